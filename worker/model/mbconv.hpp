// The EfficientNet building block: inverted residual (MBConv) with squeeze-and-excitation and
// stochastic depth.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "worker/model/conv.hpp"

namespace smartcash::model {

/// Drops the whole residual branch for a random subset of samples in training (stochastic depth)
/// and rescales the kept ones by 1 / (1 - rate). Draws from torch's generator of the tensor's
/// device, so torch::manual_seed makes it reproducible. Identity in eval or at rate 0.
torch::Tensor drop_path(const torch::Tensor& x, double rate, bool training);

/// Channel attention: global average pool -> 1x1 reduce -> SiLU -> 1x1 expand -> sigmoid gate.
struct SqueezeExcitationImpl : torch::nn::Module {
    SqueezeExcitationImpl(int64_t channels, int64_t squeezed_channels);
    torch::Tensor forward(const torch::Tensor& x);

    torch::nn::Conv2d reduce{nullptr};
    torch::nn::Conv2d expand{nullptr};
};
TORCH_MODULE(SqueezeExcitation);

struct MBConvOptions {
    MBConvOptions(int64_t in_channels, int64_t out_channels)
        : in_channels_(in_channels), out_channels_(out_channels) {}
    TORCH_ARG(int64_t, in_channels);
    TORCH_ARG(int64_t, out_channels);
    TORCH_ARG(int64_t, expand_ratio) = 6;
    TORCH_ARG(int64_t, kernel_size) = 3;
    TORCH_ARG(int64_t, stride) = 1;
    /// Squeeze width as a fraction of the block's input channels (not the expanded ones).
    TORCH_ARG(double, se_ratio) = 0.25;
    /// Stochastic-depth rate of this block; only used when the block has a residual.
    TORCH_ARG(double, drop_rate) = 0.0;
};

/// 1x1 expand (skipped at ratio 1) -> k x k depthwise (carries the stride) -> squeeze-excitation
/// -> 1x1 linear projection, plus the input when shapes allow.
struct MBConvImpl : torch::nn::Module {
    explicit MBConvImpl(const MBConvOptions& options);
    torch::Tensor forward(const torch::Tensor& x);

    bool has_residual() const;

    MBConvOptions options;
    ConvBnAct expand{nullptr};  ///< null when expand_ratio == 1
    ConvBnAct depthwise{nullptr};
    SqueezeExcitation se{nullptr};
    ConvBnAct project{nullptr};
};
TORCH_MODULE(MBConv);

}  // namespace smartcash::model
