#include "worker/model/adapters.hpp"

#include <string>

namespace smartcash::model {

AdaptersImpl::AdaptersImpl(const std::array<int64_t, 3>& in_channels,
                           const std::array<int64_t, 3>& out_channels) {
    for (size_t i = 0; i < levels.size(); ++i) {
        levels[i] = register_module("p" + std::to_string(i + 3),
                                    conv_bn_act(in_channels[i], out_channels[i], 1));
    }
}

FeaturePyramid AdaptersImpl::forward(const FeaturePyramid& features) {
    return {levels[0](features[0]), levels[1](features[1]), levels[2](features[2])};
}

}  // namespace smartcash::model
