// The detection loss: CIoU box loss, BCE objectness with per-scale balance, BCE classes, summed
// over the three detection layers with per-layer weights.
//
// Every part is computed per image and then summed over the images of the micro-batch, so that
// accumulating micro-batches of any size gives the same gradient as one large batch (when the
// model has no batch statistics): divide the returned sum by the effective batch.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "common/config.hpp"

namespace smartcash::train {

struct LossParts {
    torch::Tensor sum;  ///< scalar: sum over images of the weighted per-image loss (has grad)
    double box = 0;     ///< per-image means of the weighted parts (for display)
    double obj = 0;
    double cls = 0;
};

class YoloLoss {
  public:
    /// `anchors`: [3 scales, 3, 2] in input pixels.
    YoloLoss(const LossConfig& config, torch::Tensor anchors);

    /// `outputs`: [layer][scale] raw head maps [B, 3, H, W, 5 + nc]; `targets`: [N, 6] rows
    /// (image, global class, cx, cy, w, h) normalised to the input.
    LossParts operator()(const std::vector<std::vector<torch::Tensor>>& outputs,
                         const torch::Tensor& targets, int img_size) const;

  private:
    LossConfig m_config;
    torch::Tensor m_anchors;
};

/// Complete IoU of boxes given as (cx, cy, w, h), elementwise over the first dimension.
torch::Tensor complete_iou(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace smartcash::train
