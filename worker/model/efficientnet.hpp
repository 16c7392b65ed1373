// EfficientNet-B4 as a feature extractor (stem and the seven MBConv stages; no head conv or
// classifier).
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <vector>

#include "worker/model/conv.hpp"
#include "worker/model/feature_extractor.hpp"
#include "worker/model/mbconv.hpp"

namespace smartcash::model {

struct EfficientNetOptions {
    double width = 1.4;  ///< channel coefficient (B4: 1.4)
    double depth = 1.8;  ///< block-count coefficient (B4: 1.8)
    /// Stochastic-depth rate reached at the last block; block i of n uses rate * i / n.
    double drop_connect = 0.2;
};

/// The reference channel rounding: `channels * width` to the nearest multiple of 8 (at least 8),
/// bumped up by 8 when rounding lost more than 10%.
int64_t efficientnet_channels(int64_t channels, double width);

/// The reference block count: ceil(repeats * depth).
int64_t efficientnet_repeats(int64_t repeats, double depth);

/// Stem (3x3 stride-2 conv) and the B0 stage table scaled by width and depth. P3/P4/P5 are the
/// outputs of stages 3, 5 and 7 (56/160/448 channels at B4 scale).
class EfficientNetImpl : public FeatureExtractor {
  public:
    explicit EfficientNetImpl(const EfficientNetOptions& options = {});
    FeaturePyramid forward(const torch::Tensor& images) override;
    std::array<int64_t, 3> out_channels() const override { return m_out_channels; }

    /// Total number of MBConv blocks over all stages.
    int64_t num_blocks() const { return m_num_blocks; }

    ConvBnAct stem{nullptr};
    std::vector<torch::nn::Sequential> stages;

  private:
    std::array<int64_t, 3> m_out_channels{};
    int64_t m_num_blocks = 0;
};
TORCH_MODULE(EfficientNet);

}  // namespace smartcash::model
