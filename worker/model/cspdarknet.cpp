#include "worker/model/cspdarknet.hpp"

#include <string>

namespace smartcash::model {
namespace {

constexpr int64_t base_stem_channels = 64;
constexpr std::array<int64_t, 4> base_stage_channels{128, 256, 512, 1024};
constexpr std::array<int64_t, 4> base_stage_depths{3, 6, 9, 3};

}  // namespace

CspDarknetImpl::CspDarknetImpl(const CspDarknetOptions& options) {
    const int64_t stem_channels =
        round_channels_up(static_cast<double>(base_stem_channels) * options.width);
    stem = register_module("stem",
                           ConvBnAct(ConvBnActOptions(3, stem_channels, 6).stride(2).padding(2)));

    int64_t in_channels = stem_channels;
    for (size_t s = 0; s < base_stage_channels.size(); ++s) {
        const int64_t out =
            round_channels_up(static_cast<double>(base_stage_channels[s]) * options.width);
        torch::nn::Sequential stage(
            conv_bn_act(in_channels, out, 3, /*stride=*/2),
            C3(out, out, csp_depth(base_stage_depths[s], options.depth), /*shortcut=*/true));
        if (s + 1 == base_stage_channels.size()) {
            stage->push_back(Sppf(out, out));
        }
        stages.push_back(register_module("stage" + std::to_string(s + 1), stage));
        if (s >= 1) {
            m_out_channels[s - 1] = out;
        }
        in_channels = out;
    }
}

FeaturePyramid CspDarknetImpl::forward(const torch::Tensor& images) {
    FeaturePyramid features;
    auto x = stem(stage_input(images));
    for (size_t s = 0; s < stages.size(); ++s) {
        x = run_stage(stages[s], x);
        if (s >= 1) {
            features[s - 1] = output(x);
        }
    }
    return features;
}

}  // namespace smartcash::model
