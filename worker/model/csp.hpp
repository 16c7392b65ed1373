// YOLOv5-style CSP building blocks: Bottleneck, C3 and SPPF.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "worker/model/conv.hpp"

namespace smartcash::model {

/// 1x1 conv -> 3x3 conv, plus the input when `shortcut` and the channel counts match.
struct BottleneckImpl : torch::nn::Module {
    BottleneckImpl(int64_t in_channels, int64_t out_channels, bool shortcut,
                   double expansion = 1.0);
    torch::Tensor forward(const torch::Tensor& x);

    ConvBnAct cv1{nullptr};
    ConvBnAct cv2{nullptr};
    bool add = false;
};
TORCH_MODULE(Bottleneck);

/// CSP block with three convs: one half goes through `depth` bottlenecks, the other is a plain
/// 1x1 path; both are concatenated and fused by a 1x1 conv.
struct C3Impl : torch::nn::Module {
    C3Impl(int64_t in_channels, int64_t out_channels, int64_t depth, bool shortcut = true);
    torch::Tensor forward(const torch::Tensor& x);

    ConvBnAct cv1{nullptr};
    ConvBnAct cv2{nullptr};
    ConvBnAct cv3{nullptr};
    torch::nn::Sequential bottlenecks{nullptr};
};
TORCH_MODULE(C3);

/// Fast spatial pyramid pooling: three chained 5x5 max pools (receptive fields 5, 9, 13)
/// concatenated with their input.
struct SppfImpl : torch::nn::Module {
    SppfImpl(int64_t in_channels, int64_t out_channels, int64_t pool_size = 5);
    torch::Tensor forward(const torch::Tensor& x);

    ConvBnAct cv1{nullptr};
    ConvBnAct cv2{nullptr};
    torch::nn::MaxPool2d pool{nullptr};
};
TORCH_MODULE(Sppf);

/// YOLOv5 depth scaling: max(round(blocks * depth), 1).
int64_t csp_depth(int64_t blocks, double depth);

}  // namespace smartcash::model
