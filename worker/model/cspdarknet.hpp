// CSPDarknet in the YOLOv5s layout as a feature extractor.
#pragma once

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <vector>

#include "worker/model/conv.hpp"
#include "worker/model/csp.hpp"
#include "worker/model/feature_extractor.hpp"

namespace smartcash::model {

struct CspDarknetOptions {
    double width = 0.5;   ///< channel coefficient of the 64..1024 base widths (v5s: 0.5)
    double depth = 0.33;  ///< C3 depth coefficient of the 3/6/9/3 base depths (v5s: 0.33)
};

/// 6x6 stride-2 stem, then four stages of (3x3 stride-2 conv, C3); SPPF closes the last one.
/// P3/P4/P5 are the outputs of stages 2, 3 and 4 (128/256/512 channels at v5s scale).
class CspDarknetImpl : public FeatureExtractor {
  public:
    explicit CspDarknetImpl(const CspDarknetOptions& options = {});
    FeaturePyramid forward(const torch::Tensor& images) override;
    std::array<int64_t, 3> out_channels() const override { return m_out_channels; }

    ConvBnAct stem{nullptr};
    std::vector<torch::nn::Sequential> stages;

  private:
    std::array<int64_t, 3> m_out_channels{};
};
TORCH_MODULE(CspDarknet);

}  // namespace smartcash::model
