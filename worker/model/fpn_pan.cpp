#include "worker/model/fpn_pan.hpp"

namespace smartcash::model {
namespace {

torch::Tensor upsample2x(const torch::Tensor& x) {
    namespace F = torch::nn::functional;
    return F::interpolate(x, F::InterpolateFuncOptions()
                                 .scale_factor(std::vector<double>{2.0, 2.0})
                                 .mode(torch::kNearest));
}

}  // namespace

FpnPanImpl::FpnPanImpl(const std::array<int64_t, 3>& channels, int64_t depth) {
    const auto [c3, c4, c5] = channels;
    // The neck's C3 blocks have no shortcut: they fuse concatenated features rather than refine.
    reduce_p5 = register_module("reduce_p5", conv_bn_act(c5, c4, 1));
    top_down_p4 = register_module("top_down_p4", C3(2 * c4, c4, depth, /*shortcut=*/false));
    reduce_p4 = register_module("reduce_p4", conv_bn_act(c4, c3, 1));
    top_down_p3 = register_module("top_down_p3", C3(2 * c3, c3, depth, /*shortcut=*/false));
    downsample_p3 = register_module("downsample_p3", conv_bn_act(c3, c3, 3, /*stride=*/2));
    bottom_up_p4 = register_module("bottom_up_p4", C3(2 * c3, c4, depth, /*shortcut=*/false));
    downsample_p4 = register_module("downsample_p4", conv_bn_act(c4, c4, 3, /*stride=*/2));
    bottom_up_p5 = register_module("bottom_up_p5", C3(2 * c4, c5, depth, /*shortcut=*/false));
}

FeaturePyramid FpnPanImpl::forward(const FeaturePyramid& features) {
    const auto& [p3, p4, p5] = features;
    const bool ckpt = m_checkpointing;
    auto lateral5 = reduce_p5(p5);
    auto merged4 = run_block(top_down_p4, torch::cat({upsample2x(lateral5), p4}, 1), ckpt);
    auto lateral4 = reduce_p4(merged4);
    auto out3 = run_block(top_down_p3, torch::cat({upsample2x(lateral4), p3}, 1), ckpt);
    auto out4 = run_block(bottom_up_p4, torch::cat({downsample_p3(out3), lateral4}, 1), ckpt);
    auto out5 = run_block(bottom_up_p5, torch::cat({downsample_p4(out4), lateral5}, 1), ckpt);
    return {out3, out4, out5};
}

}  // namespace smartcash::model
