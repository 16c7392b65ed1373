#include "worker/model/csp.hpp"

#include <algorithm>
#include <cmath>

namespace smartcash::model {

BottleneckImpl::BottleneckImpl(int64_t in_channels, int64_t out_channels, bool shortcut,
                               double expansion) {
    const auto hidden = static_cast<int64_t>(static_cast<double>(out_channels) * expansion);
    cv1 = register_module("cv1", conv_bn_act(in_channels, hidden, 1));
    cv2 = register_module("cv2", conv_bn_act(hidden, out_channels, 3));
    add = shortcut && in_channels == out_channels;
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
    auto y = cv2(cv1(x));
    return add ? x + y : y;
}

C3Impl::C3Impl(int64_t in_channels, int64_t out_channels, int64_t depth, bool shortcut) {
    const int64_t hidden = out_channels / 2;
    cv1 = register_module("cv1", conv_bn_act(in_channels, hidden, 1));
    cv2 = register_module("cv2", conv_bn_act(in_channels, hidden, 1));
    cv3 = register_module("cv3", conv_bn_act(2 * hidden, out_channels, 1));
    bottlenecks = torch::nn::Sequential();
    for (int64_t i = 0; i < depth; ++i) {
        bottlenecks->push_back(Bottleneck(hidden, hidden, shortcut, /*expansion=*/1.0));
    }
    bottlenecks = register_module("bottlenecks", bottlenecks);
}

torch::Tensor C3Impl::forward(const torch::Tensor& x) {
    return cv3(torch::cat({bottlenecks->forward(cv1(x)), cv2(x)}, 1));
}

SppfImpl::SppfImpl(int64_t in_channels, int64_t out_channels, int64_t pool_size) {
    const int64_t hidden = in_channels / 2;
    cv1 = register_module("cv1", conv_bn_act(in_channels, hidden, 1));
    cv2 = register_module("cv2", conv_bn_act(hidden * 4, out_channels, 1));
    pool = register_module(
        "pool", torch::nn::MaxPool2d(
                    torch::nn::MaxPool2dOptions(pool_size).stride(1).padding(pool_size / 2)));
}

torch::Tensor SppfImpl::forward(const torch::Tensor& x) {
    auto a = cv1(x);
    auto b = pool(a);
    auto c = pool(b);
    auto d = pool(c);
    return cv2(torch::cat({a, b, c, d}, 1));
}

int64_t csp_depth(int64_t blocks, double depth) {
    return std::max<int64_t>(1, std::llround(static_cast<double>(blocks) * depth));
}

}  // namespace smartcash::model
