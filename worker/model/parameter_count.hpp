// Parameter counts per detector component, for `smartcash-worker model-info`.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>

namespace smartcash::model {

class DetectorImpl;

/// Numbers of scalar parameters (buffers such as batch-norm statistics are not counted).
struct ParameterCounts {
    int64_t backbone = 0;  ///< stem and stages
    int64_t adapters = 0;  ///< the 1x1 adapters
    int64_t neck = 0;      ///< FPN + PAN
    int64_t head = 0;      ///< the three YOLO heads
    int64_t total = 0;     ///< all of the above
};

/// Counts the parameters of each component of `detector`.
ParameterCounts count_parameters(DetectorImpl& detector);

/// {"backbone": .., "adapters": .., "neck": .., "head": .., "total": ..}
nlohmann::json to_json(const ParameterCounts& counts);

}  // namespace smartcash::model
