// From raw head maps to scored boxes per image (after class-aware NMS).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "worker/eval/boxes.hpp"

namespace smartcash::train {

struct DecodeOptions {
    float conf_threshold = 0.001f;
    float nms_iou = 0.6f;
    std::size_t max_detections = 300;
    std::size_t max_candidates = 4000;  ///< per image, before NMS
};

/// Detections per image of the batch, in input pixels, with global class ids. `image_offset` is
/// added to Detection::image.
std::vector<eval::Detection> decode_detections(
    const std::vector<std::vector<torch::Tensor>>& outputs, const torch::Tensor& anchors,
    int img_size, const DecodeOptions& options, int image_offset);

}  // namespace smartcash::train
