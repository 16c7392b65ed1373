// Shapes, layer layout, head initialisation and determinism of the detector.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "model_test_util.hpp"
#include "worker/model/cspdarknet.hpp"
#include "worker/model/efficientnet.hpp"
#include "worker/model/mbconv.hpp"

namespace smartcash::model {
namespace {

using testing::tiny_options;

class DetectorShapes : public ::testing::TestWithParam<Backbone> {};

TEST_P(DetectorShapes, HeadOutputsPerLayerAndScale) {
    torch::manual_seed(0);
    Detector detector(tiny_options(GetParam()));
    const int64_t batch = 2, height = 64, width = 96;  // not square: catches H/W mix-ups
    const auto outputs = detector->forward(torch::randn({batch, 3, height, width}));
    ASSERT_EQ(outputs.size(), detection_layers().size());
    for (size_t l = 0; l < outputs.size(); ++l) {
        ASSERT_EQ(outputs[l].size(), static_cast<size_t>(num_scales));
        for (int s = 0; s < num_scales; ++s) {
            const std::vector<int64_t> expected{batch, anchors_per_scale, height / strides[s],
                                                width / strides[s],
                                                5 + detection_layers()[l].num_classes};
            EXPECT_EQ(outputs[l][s].sizes().vec(), expected) << "layer " << l << " scale " << s;
            EXPECT_TRUE(outputs[l][s].is_contiguous());
        }
    }
}

TEST_P(DetectorShapes, BackboneFeatureStridesAndChannels) {
    torch::manual_seed(0);
    Detector detector(tiny_options(GetParam()));
    auto& backbone = dynamic_cast<FeatureExtractor&>(detector->backbone_module());
    const auto features = backbone.forward(torch::randn({1, 3, 64, 128}));
    const auto channels = detector->backbone_channels();
    for (int s = 0; s < num_scales; ++s) {
        EXPECT_EQ(features[s].sizes().vec(),
                  (std::vector<int64_t>{1, channels[s], 64 / strides[s], 128 / strides[s]}));
    }
}

INSTANTIATE_TEST_SUITE_P(Backbones, DetectorShapes,
                         ::testing::Values(Backbone::efficientnet_b4, Backbone::cspdarknet),
                         testing::BackboneName());

TEST(DetectorLayout, FullSizeBackboneChannelsAreThePublishedOnes) {
    // Building is cheap; only the channel bookkeeping is checked here.
    EXPECT_EQ(EfficientNet()->out_channels(), (std::array<int64_t, 3>{56, 160, 448}));
    EXPECT_EQ(CspDarknet()->out_channels(), (std::array<int64_t, 3>{128, 256, 512}));
    EXPECT_EQ(neck_channels(1.0), (std::array<int64_t, 3>{128, 256, 512}));
    EXPECT_EQ(neck_channels(0.25), (std::array<int64_t, 3>{32, 64, 128}));
    EXPECT_EQ(neck_channels(0.01), (std::array<int64_t, 3>{8, 8, 8}));
}

TEST(DetectorLayout, EfficientNetB4ScalingMatchesTheReference) {
    // Stem 48; stage widths 24 32 56 112 160 272 448; repeats 2 4 4 6 6 8 2 (32 blocks).
    EXPECT_EQ(efficientnet_channels(32, 1.4), 48);
    const std::array<int64_t, 7> b0{16, 24, 40, 80, 112, 192, 320};
    const std::array<int64_t, 7> b4{24, 32, 56, 112, 160, 272, 448};
    for (size_t i = 0; i < b0.size(); ++i) {
        EXPECT_EQ(efficientnet_channels(b0[i], 1.4), b4[i]) << b0[i];
    }
    EfficientNet b4_net;
    EXPECT_EQ(b4_net->num_blocks(), 32);
    const std::array<size_t, 7> repeats{2, 4, 4, 6, 6, 8, 2};
    ASSERT_EQ(b4_net->stages.size(), repeats.size());
    for (size_t i = 0; i < repeats.size(); ++i) {
        EXPECT_EQ(b4_net->stages[i]->size(), repeats[i]) << "stage " << i + 1;
    }
    // Stochastic depth grows linearly over the blocks up to (but excluding) the full rate.
    const auto& last = b4_net->stages.back()->ptr<MBConvImpl>(1)->options;
    EXPECT_NEAR(last.drop_rate(), 0.2 * 31.0 / 32.0, 1e-12);
    const auto& first = b4_net->stages.front()->ptr<MBConvImpl>(0)->options;
    EXPECT_EQ(first.drop_rate(), 0.0);
}

TEST(DetectorLayout, ClassesAndLayersAgree) {
    const auto& names = class_names();
    ASSERT_EQ(names.size(), 17u);
    EXPECT_EQ(names.front(), "001");
    EXPECT_EQ(names[6], "100");
    EXPECT_EQ(names[7], "l2_001");
    EXPECT_EQ(names[13], "l2_100");
    EXPECT_EQ(names[14], "l3_sign");
    EXPECT_EQ(names[15], "l3_text");
    EXPECT_EQ(names[16], "l3_thread");
    int next = 0;
    for (const auto& layer : detection_layers()) {
        EXPECT_EQ(layer.first_class, next) << layer.name;
        next += layer.num_classes;
    }
    EXPECT_EQ(next, 17);
    EXPECT_STREQ(detection_layers()[0].name, "layer_1");
    EXPECT_STREQ(detection_layers()[2].name, "layer_3");
}

TEST(DetectorLayout, AnchorsAreTheYoloV5OnesAndABuffer) {
    const auto anchors = default_anchors();
    EXPECT_EQ(anchors.sizes().vec(), (std::vector<int64_t>{3, 3, 2}));
    EXPECT_EQ(anchors[0][0][0].item<float>(), 10.f);
    EXPECT_EQ(anchors[0][0][1].item<float>(), 13.f);
    EXPECT_EQ(anchors[2][2][0].item<float>(), 373.f);
    EXPECT_EQ(anchors[2][2][1].item<float>(), 326.f);
    Detector detector(tiny_options(Backbone::cspdarknet));
    EXPECT_TRUE(torch::equal(detector->anchors(), anchors));
    EXPECT_EQ(detector->named_buffers().contains("anchors"), true);
}

TEST(DetectorLayout, HeadBiasesStartAtThePriors) {
    torch::manual_seed(0);
    Detector detector(tiny_options(Backbone::cspdarknet));
    // With a zero input (and fresh batch norms in eval) every cell predicts its bias.
    detector->eval();
    torch::NoGradGuard no_grad;
    const auto outputs = detector->forward(torch::zeros({1, 3, 64, 64}));
    for (size_t l = 0; l < outputs.size(); ++l) {
        const double nc = detection_layers()[l].num_classes;
        for (int s = 0; s < num_scales; ++s) {
            // Logits: the prior plus PyTorch's small default bias (|b| <= 1/sqrt(fan_in)).
            const double cells = std::pow(640.0 / strides[s], 2);
            const auto obj = outputs[l][s].select(-1, 4).mean().item<double>();
            EXPECT_NEAR(obj, std::log(8.0 / cells), 0.2) << "layer " << l << " scale " << s;
            const auto cls = outputs[l][s].slice(-1, 5).mean().item<double>();
            EXPECT_NEAR(cls, std::log(0.6 / (nc - 0.99)), 0.2) << "layer " << l << " scale " << s;
        }
    }
}

TEST(DetectorDeterminism, SameSeedSameForwardInTraining) {
    // Training mode: stochastic depth draws masks, so only the seed makes runs equal.
    auto run = [](uint64_t seed) {
        torch::manual_seed(1);
        Detector detector(tiny_options(Backbone::efficientnet_b4, /*drop_connect=*/0.5));
        detector->train();
        const auto images = torch::randn({4, 3, 32, 32});
        torch::manual_seed(seed);
        return detector->forward(images)[0][0];
    };
    const auto a = run(7), b = run(7);
    EXPECT_TRUE(torch::equal(a, b));
    // Some seed must draw different masks than seed 7, or the stochastic depth is not random.
    bool differs = false;
    for (uint64_t seed = 8; seed < 16 && !differs; ++seed) {
        differs = !torch::equal(a, run(seed));
    }
    EXPECT_TRUE(differs);
}

TEST(DropPath, PerSampleInTrainingIdentityInEval) {
    const auto x = torch::ones({64, 2, 3, 3});
    EXPECT_TRUE(torch::equal(drop_path(x, 0.5, /*training=*/false), x));
    EXPECT_TRUE(torch::equal(drop_path(x, 0.0, /*training=*/true), x));
    torch::manual_seed(3);
    const auto y = drop_path(x, 0.5, /*training=*/true);
    int dropped = 0;
    for (int64_t i = 0; i < y.size(0); ++i) {
        const auto sample = y[i];
        const bool zero = torch::equal(sample, torch::zeros_like(sample));
        const bool kept = torch::allclose(sample, torch::full_like(sample, 2.0));
        EXPECT_TRUE(zero || kept) << "sample " << i << " is neither dropped nor rescaled";
        dropped += zero ? 1 : 0;
    }
    EXPECT_GT(dropped, 8);
    EXPECT_LT(dropped, 56);
    torch::manual_seed(3);
    EXPECT_TRUE(torch::equal(drop_path(x, 0.5, /*training=*/true), y));
}

}  // namespace
}  // namespace smartcash::model
