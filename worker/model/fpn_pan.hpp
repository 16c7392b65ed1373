// The neck: a top-down feature pyramid (FPN) followed by a bottom-up path (PAN), as in YOLOv5.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>

#include "worker/model/conv.hpp"
#include "worker/model/csp.hpp"
#include "worker/model/feature_extractor.hpp"

namespace smartcash::model {

/// Input and output widths are the same per level (P3, P4, P5); `depth` bottlenecks per C3.
struct FpnPanImpl : torch::nn::Module {
    FpnPanImpl(const std::array<int64_t, 3>& channels, int64_t depth);
    FeaturePyramid forward(const FeaturePyramid& features);

    /// Recompute each C3 block in backward instead of keeping its activations (training only).
    void set_activation_checkpointing(bool on) { m_checkpointing = on; }

    // Top-down.
    ConvBnAct reduce_p5{nullptr};  ///< P5 -> P4 width, also the lateral of the last PAN step
    C3 top_down_p4{nullptr};
    ConvBnAct reduce_p4{nullptr};  ///< P4 -> P3 width, also the lateral of the first PAN step
    C3 top_down_p3{nullptr};       ///< output P3
    // Bottom-up.
    ConvBnAct downsample_p3{nullptr};
    C3 bottom_up_p4{nullptr};  ///< output P4
    ConvBnAct downsample_p4{nullptr};
    C3 bottom_up_p5{nullptr};  ///< output P5

  private:
    bool m_checkpointing = false;
};
TORCH_MODULE(FpnPan);

}  // namespace smartcash::model
