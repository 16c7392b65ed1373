#include "worker/model/conv.hpp"

#include <algorithm>
#include <cmath>

namespace smartcash::model {

ConvBnActImpl::ConvBnActImpl(const ConvBnActOptions& options_) : options(options_) {
    const int64_t padding = options.padding() >= 0 ? options.padding() : options.kernel_size() / 2;
    conv = register_module(
        "conv",
        torch::nn::Conv2d(torch::nn::Conv2dOptions(options.in_channels(), options.out_channels(),
                                                   options.kernel_size())
                              .stride(options.stride())
                              .padding(padding)
                              .groups(options.groups())
                              .bias(false)));
    bn = register_module(
        "bn", torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(options.out_channels())
                                         .eps(options.batch_norm().eps)
                                         .momentum(options.batch_norm().momentum)));
}

torch::Tensor ConvBnActImpl::forward(const torch::Tensor& x) {
    auto y = bn(conv(x));
    return options.activation() ? torch::silu(y) : y;
}

ConvBnAct conv_bn_act(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                      int64_t stride) {
    return ConvBnAct(ConvBnActOptions(in_channels, out_channels, kernel_size).stride(stride));
}

int64_t round_channels_up(double channels) {
    const auto rounded = static_cast<int64_t>(std::ceil(channels / 8.0 - 1e-9)) * 8;
    return std::max<int64_t>(8, rounded);
}

}  // namespace smartcash::model
