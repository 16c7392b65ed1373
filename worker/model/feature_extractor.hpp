// What the detector needs from a backbone: features at strides 8, 16 and 32.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>

#include "worker/model/activation_checkpoint.hpp"

namespace smartcash::model {

/// Feature maps at strides 8, 16 and 32 (P3, P4, P5), finest first.
using FeaturePyramid = std::array<torch::Tensor, 3>;

/// A backbone: a stem and stages and nothing else (no classifier), so that "backbone" means the
/// same set of parameters for freezing, learning-rate groups and parameter counts.
class FeatureExtractor : public torch::nn::Module {
  public:
    /// P3, P4, P5 of `images` [B, 3, H, W] (H and W multiples of 32).
    virtual FeaturePyramid forward(const torch::Tensor& images) = 0;
    /// Channels of P3, P4, P5.
    virtual std::array<int64_t, 3> out_channels() const = 0;

    /// Recompute each stage in backward instead of keeping its activations (training only).
    void set_activation_checkpointing(bool on) { m_checkpointing = on; }
    bool activation_checkpointing() const { return m_checkpointing; }

    /// Run the stem and stages on activations in channels-last (NHWC) memory format. The CPU's
    /// oneDNN convolutions are faster on it (forward and backward); the parameters keep their
    /// format, and P3, P4, P5 come out in the default one, so nothing outside the backbone
    /// changes. Only the order of the float sums inside the convolutions differs.
    void set_channels_last(bool on) { m_channels_last = on; }
    bool channels_last() const { return m_channels_last; }

  protected:
    /// The images in the format the stages run on.
    torch::Tensor stage_input(const torch::Tensor& images) const {
        return m_channels_last ? images.contiguous(torch::MemoryFormat::ChannelsLast) : images;
    }
    /// A feature map in the format the backbone hands out.
    torch::Tensor output(const torch::Tensor& x) const {
        return m_channels_last ? x.contiguous() : x;
    }

    /// Runs one stage, through activation checkpointing when it is on.
    template <typename Holder>
    torch::Tensor run_stage(const Holder& stage, const torch::Tensor& x) {
        return run_block(stage, x, m_checkpointing);
    }

  private:
    bool m_checkpointing = false;
    bool m_channels_last = false;
};

}  // namespace smartcash::model
