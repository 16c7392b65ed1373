// The YOLO head of one detection layer: a 1x1 prediction conv per scale.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <vector>

#include "worker/model/feature_extractor.hpp"

namespace smartcash::model {

/// Predicts, per scale, `anchors` boxes per cell as (tx, ty, tw, th, obj, cls...) logits.
struct YoloHeadImpl : torch::nn::Module {
    /// `strides` are the scales' strides, used only to set the objectness prior.
    YoloHeadImpl(const std::array<int64_t, 3>& in_channels, int64_t num_classes, int64_t anchors,
                 const std::array<int, 3>& strides);
    /// One [B, anchors, H, W, 5 + num_classes] tensor per scale.
    std::vector<torch::Tensor> forward(const FeaturePyramid& features);

    int64_t num_classes = 0;
    int64_t num_anchors = 0;
    std::array<torch::nn::Conv2d, 3> predict{torch::nn::Conv2d{nullptr}, torch::nn::Conv2d{nullptr},
                                             torch::nn::Conv2d{nullptr}};
};
TORCH_MODULE(YoloHead);

}  // namespace smartcash::model
