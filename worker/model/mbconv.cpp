#include "worker/model/mbconv.hpp"

#include <algorithm>

namespace smartcash::model {

torch::Tensor drop_path(const torch::Tensor& x, double rate, bool training) {
    if (!training || rate <= 0.0) {
        return x;
    }
    const double keep = 1.0 - rate;
    std::vector<int64_t> mask_shape(static_cast<size_t>(x.dim()), 1);
    mask_shape[0] = x.size(0);
    auto mask = torch::empty(mask_shape, x.options()).bernoulli_(keep);
    return keep > 0.0 ? x * mask.div_(keep) : x * mask;
}

SqueezeExcitationImpl::SqueezeExcitationImpl(int64_t channels, int64_t squeezed_channels) {
    reduce = register_module(
        "reduce", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, squeezed_channels, 1)));
    expand = register_module(
        "expand", torch::nn::Conv2d(torch::nn::Conv2dOptions(squeezed_channels, channels, 1)));
}

torch::Tensor SqueezeExcitationImpl::forward(const torch::Tensor& x) {
    auto scale = torch::adaptive_avg_pool2d(x, {1, 1});
    scale = torch::sigmoid(expand(torch::silu(reduce(scale))));
    return x * scale;
}

MBConvImpl::MBConvImpl(const MBConvOptions& options_) : options(options_) {
    const int64_t in = options.in_channels();
    const int64_t hidden = in * options.expand_ratio();
    const auto bn = efficientnet_batch_norm;
    if (options.expand_ratio() != 1) {
        expand =
            register_module("expand", ConvBnAct(ConvBnActOptions(in, hidden, 1).batch_norm(bn)));
    }
    depthwise = register_module("depthwise",
                                ConvBnAct(ConvBnActOptions(hidden, hidden, options.kernel_size())
                                              .stride(options.stride())
                                              .groups(hidden)
                                              .batch_norm(bn)));
    const auto squeezed =
        std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(in) * options.se_ratio()));
    se = register_module("se", SqueezeExcitation(hidden, squeezed));
    project = register_module(
        "project",
        ConvBnAct(
            ConvBnActOptions(hidden, options.out_channels(), 1).activation(false).batch_norm(bn)));
}

bool MBConvImpl::has_residual() const {
    return options.stride() == 1 && options.in_channels() == options.out_channels();
}

torch::Tensor MBConvImpl::forward(const torch::Tensor& x) {
    auto y = expand ? expand(x) : x;
    y = project(se(depthwise(y)));
    if (!has_residual()) {
        return y;
    }
    return x + drop_path(y, options.drop_rate(), is_training());
}

}  // namespace smartcash::model
