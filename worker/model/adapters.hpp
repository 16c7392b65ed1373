// 1x1 adapters: bring any backbone's P3/P4/P5 to the widths the neck is built for.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>

#include "worker/model/conv.hpp"
#include "worker/model/feature_extractor.hpp"

namespace smartcash::model {

/// One 1x1 Conv-BN-SiLU per pyramid level.
struct AdaptersImpl : torch::nn::Module {
    AdaptersImpl(const std::array<int64_t, 3>& in_channels,
                 const std::array<int64_t, 3>& out_channels);
    FeaturePyramid forward(const FeaturePyramid& features);

    std::array<ConvBnAct, 3> levels{ConvBnAct{nullptr}, ConvBnAct{nullptr}, ConvBnAct{nullptr}};
};
TORCH_MODULE(Adapters);

}  // namespace smartcash::model
