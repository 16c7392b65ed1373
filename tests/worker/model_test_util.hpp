// Shared helpers of the model tests.
#pragma once

#include <torch/torch.h>

#include <string>

#include "common/config.hpp"
#include "worker/model/detector.hpp"

namespace smartcash::model::testing {

/// A detector small enough for unit tests: every width x 0.25, every depth x 0.34.
inline DetectorOptions tiny_options(Backbone backbone, double drop_connect = 0.2) {
    DetectorOptions options;
    options.backbone = backbone;
    options.width_multiple = 0.25;
    options.depth_multiple = 0.34;
    options.drop_connect = drop_connect;
    return options;
}

/// Names a case parameterised by backbone after it (e.g. Backbones/DetectorShapes.X/cspdarknet), so
/// that `ctest -R` can select one backbone.
struct BackboneName {
    template <class ParamInfo>
    std::string operator()(const ParamInfo& info) const {
        return smartcash::to_string(info.param);
    }
};

}  // namespace smartcash::model::testing
