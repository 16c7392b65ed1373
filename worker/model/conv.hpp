// Convolution + batch norm + SiLU: the unit every part of the detector is built from.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace smartcash::model {

/// Batch-norm settings. The EfficientNet reference and the YOLO parts use different ones, and
/// pretrained-style statistics only behave as expected with the values each was designed for.
struct BatchNormSettings {
    double eps = 1e-3;
    double momentum = 0.03;
};

/// YOLOv5-style batch norm (eps 1e-3, momentum 0.03) for the CSP backbone, adapters and neck.
inline constexpr BatchNormSettings yolo_batch_norm{1e-3, 0.03};
/// EfficientNet-B4's batch norm as torchvision's and timm's efficientnet_b4 define it: PyTorch's
/// plain BatchNorm2d (eps 1e-5, momentum 0.1). Only B5-B7 use eps 1e-3 / momentum 0.01 there.
inline constexpr BatchNormSettings efficientnet_batch_norm{1e-5, 0.1};

struct ConvBnActOptions {
    ConvBnActOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
        : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
    TORCH_ARG(int64_t, in_channels);
    TORCH_ARG(int64_t, out_channels);
    TORCH_ARG(int64_t, kernel_size);
    TORCH_ARG(int64_t, stride) = 1;
    /// Negative: kernel_size / 2, which keeps the size at stride 1 and halves it at stride 2.
    TORCH_ARG(int64_t, padding) = -1;
    TORCH_ARG(int64_t, groups) = 1;
    /// False leaves the output linear (projection convs of MBConv).
    TORCH_ARG(bool, activation) = true;
    TORCH_ARG(BatchNormSettings, batch_norm) = yolo_batch_norm;
};

/// Conv2d (no bias: the batch norm has one) -> BatchNorm2d -> optional SiLU.
struct ConvBnActImpl : torch::nn::Module {
    explicit ConvBnActImpl(const ConvBnActOptions& options);
    torch::Tensor forward(const torch::Tensor& x);

    ConvBnActOptions options;
    torch::nn::Conv2d conv{nullptr};
    torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(ConvBnAct);

/// Shorthand for the common case: a k x k conv with stride s and YOLO batch norm.
ConvBnAct conv_bn_act(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                      int64_t stride = 1);

/// Rounds a channel count to a multiple of 8, never below 8: keeps tiny test variants valid and
/// full-size ones identical to the published channel widths.
int64_t round_channels_up(double channels);

}  // namespace smartcash::model
