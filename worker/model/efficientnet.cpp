#include "worker/model/efficientnet.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace smartcash::model {
namespace {

/// One row of the EfficientNet-B0 stage table.
struct StageSpec {
    int64_t expand_ratio;
    int64_t kernel_size;
    int64_t stride;
    int64_t in_channels;
    int64_t out_channels;
    int64_t repeats;
};

constexpr int64_t b0_stem_channels = 32;
constexpr std::array<StageSpec, 7> b0_stages{{
    {1, 3, 1, 32, 16, 1},
    {6, 3, 2, 16, 24, 2},
    {6, 5, 2, 24, 40, 2},
    {6, 3, 2, 40, 80, 3},
    {6, 5, 1, 80, 112, 3},
    {6, 5, 2, 112, 192, 4},
    {6, 3, 1, 192, 320, 1},
}};
// Stages whose outputs are P3 (stride 8), P4 (stride 16) and P5 (stride 32).
constexpr std::array<size_t, 3> pyramid_stages{2, 4, 6};

}  // namespace

int64_t efficientnet_channels(int64_t channels, double width) {
    constexpr int64_t divisor = 8;
    const double scaled = static_cast<double>(channels) * width;
    int64_t rounded = std::max<int64_t>(
        divisor, static_cast<int64_t>(scaled + divisor / 2.0) / divisor * divisor);
    if (static_cast<double>(rounded) < 0.9 * scaled) {
        rounded += divisor;
    }
    return rounded;
}

int64_t efficientnet_repeats(int64_t repeats, double depth) {
    return static_cast<int64_t>(std::ceil(static_cast<double>(repeats) * depth - 1e-9));
}

EfficientNetImpl::EfficientNetImpl(const EfficientNetOptions& options) {
    const int64_t stem_channels = efficientnet_channels(b0_stem_channels, options.width);
    stem = register_module(
        "stem",
        ConvBnAct(
            ConvBnActOptions(3, stem_channels, 3).stride(2).batch_norm(efficientnet_batch_norm)));

    for (const auto& spec : b0_stages) {
        m_num_blocks += efficientnet_repeats(spec.repeats, options.depth);
    }

    int64_t block_index = 0;
    int64_t in_channels = stem_channels;
    for (size_t s = 0; s < b0_stages.size(); ++s) {
        const auto& spec = b0_stages[s];
        const int64_t out = efficientnet_channels(spec.out_channels, options.width);
        torch::nn::Sequential stage;
        const int64_t repeats = efficientnet_repeats(spec.repeats, options.depth);
        for (int64_t r = 0; r < repeats; ++r) {
            const double drop_rate = options.drop_connect * static_cast<double>(block_index) /
                                     static_cast<double>(m_num_blocks);
            stage->push_back(MBConv(MBConvOptions(r == 0 ? in_channels : out, out)
                                        .expand_ratio(spec.expand_ratio)
                                        .kernel_size(spec.kernel_size)
                                        .stride(r == 0 ? spec.stride : 1)
                                        .drop_rate(drop_rate)));
            ++block_index;
        }
        stages.push_back(register_module("stage" + std::to_string(s + 1), stage));
        in_channels = out;
    }
    for (size_t i = 0; i < pyramid_stages.size(); ++i) {
        m_out_channels[i] =
            efficientnet_channels(b0_stages[pyramid_stages[i]].out_channels, options.width);
    }

    // The reference initialisation: He (fan-out) for convs, zero biases; batch norms start at
    // identity by default.
    torch::NoGradGuard no_grad;
    for (auto& module : modules(/*include_self=*/false)) {
        if (auto* conv = module->as<torch::nn::Conv2d>()) {
            torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut);
            if (conv->bias.defined()) {
                torch::nn::init::zeros_(conv->bias);
            }
        }
    }
}

FeaturePyramid EfficientNetImpl::forward(const torch::Tensor& images) {
    FeaturePyramid features;
    auto x = stem(stage_input(images));
    size_t next = 0;
    for (size_t s = 0; s < stages.size(); ++s) {
        x = run_stage(stages[s], x);
        if (next < pyramid_stages.size() && s == pyramid_stages[next]) {
            features[next++] = output(x);
        }
    }
    return features;
}

}  // namespace smartcash::model
