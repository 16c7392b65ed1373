// Decoding checked directly: hand-built head logits must decode to exact, off-centre, non-square
// boxes with the right global class, score and image, in every detection layer.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "worker/inference/decode.hpp"
#include "worker/model/detector.hpp"

namespace {

using namespace smartcash;

constexpr int kImg = 256;  // grids 32, 16, 8

/// The logit whose sigmoid is p.
float logit(double p) { return static_cast<float>(std::log(p / (1.0 - p))); }

/// Head maps for a batch with nothing in them: objectness logit -20 everywhere.
std::vector<std::vector<torch::Tensor>> empty_outputs(std::int64_t batch) {
    std::vector<std::vector<torch::Tensor>> out;
    for (const auto& layer : model::detection_layers()) {
        std::vector<torch::Tensor> scales;
        for (int stride : model::strides) {
            const std::int64_t g = kImg / stride;
            auto map = torch::zeros({batch, model::anchors_per_scale, g, g, 5 + layer.num_classes});
            map.select(-1, 4).fill_(-20.0f);
            scales.push_back(map);
        }
        out.push_back(std::move(scales));
    }
    return out;
}

/// One object planted in the raw maps: the sigmoids of (tx, ty, tw, th), objectness and local
/// class.
struct Planted {
    int image, layer, scale, anchor, col, row;
    double sx, sy, sw, sh;
    int local_class;
    // What the YOLO decoding makes of it (input pixels).
    eval::Box expected;
    int global_class;
};

void plant(std::vector<std::vector<torch::Tensor>>& outputs, const Planted& p) {
    auto cell = outputs[static_cast<std::size_t>(p.layer)][static_cast<std::size_t>(p.scale)]
                       [p.image][p.anchor][p.row][p.col];
    cell[0] = logit(p.sx);
    cell[1] = logit(p.sy);
    cell[2] = logit(p.sw);
    cell[3] = logit(p.sh);
    cell[4] = 2.0f;  // objectness sigmoid 0.8808
    cell.narrow(0, 5, cell.size(0) - 5).fill_(-3.0f);
    cell[5 + p.local_class] = 3.0f;  // class sigmoid 0.9526
}

// Each expected box worked out from cx = (2 sx - 0.5 + col) stride, cy = (2 sy - 0.5 + row)
// stride, w = (2 sw)^2 anchor_w, h = (2 sh)^2 anchor_h.
const std::vector<Planted>& planted() {
    static const std::vector<Planted> objects = {
        // layer_1, stride 8, anchor 33x23, column 7, row 20:
        // cx = (1.5 - 0.5 + 7) 8 = 64, cy = (0.5 - 0.5 + 20) 8 = 160, w = 1.5^2 33 = 74.25,
        // h = 0.5^2 23 = 5.75.
        {0, 0, 0, 2, 7, 20, 0.75, 0.25, 0.75, 0.25, 5, {26.875f, 157.125f, 101.125f, 162.875f}, 5},
        // layer_2, stride 16, anchor 62x45, column 11, row 3:
        // cx = (0.5 - 0.5 + 11) 16 = 176, cy = (1.5 - 0.5 + 3) 16 = 64, w = 0.5^2 62 = 15.5,
        // h = 1.5^2 45 = 101.25.
        {0, 1, 1, 1, 11, 3, 0.25, 0.75, 0.25, 0.75, 2, {168.25f, 13.375f, 183.75f, 114.625f}, 9},
        // layer_3, stride 32, anchor 116x90, column 2, row 5:
        // cx = (1 - 0.5 + 2) 32 = 80, cy = (1.5 - 0.5 + 5) 32 = 192, w = 1^2 116, h = 1^2 90.
        {0, 2, 2, 0, 2, 5, 0.5, 0.75, 0.5, 0.5, 1, {22.0f, 147.0f, 138.0f, 237.0f}, 15},
        // Image 1, layer_2, stride 8, anchor 16x30, column 25, row 4:
        // cx = (0.8 - 0.5 + 25) 8 = 202.4, cy = (1.2 - 0.5 + 4) 8 = 37.6, w = 0.6^2 16 = 5.76,
        // h = 1.6^2 30 = 76.8.
        {1, 1, 0, 1, 25, 4, 0.4, 0.6, 0.3, 0.8, 6, {199.52f, -0.8f, 205.28f, 76.0f}, 13},
    };
    return objects;
}

TEST(Decode, HandBuiltLogitsGiveExactBoxesClassesAndScores) {
    auto outputs = empty_outputs(2);
    for (const auto& p : planted()) plant(outputs, p);
    train::DecodeOptions options;
    constexpr int kOffset = 10;
    const auto dets =
        train::decode_detections(outputs, model::default_anchors(), kImg, options, kOffset);
    ASSERT_EQ(dets.size(), planted().size())
        << "only the planted cells clear the confidence threshold";
    const float score = static_cast<float>(1.0 / (1.0 + std::exp(-2.0)) / (1.0 + std::exp(-3.0)));
    for (const auto& p : planted()) {
        SCOPED_TRACE("class " + std::to_string(p.global_class));
        const eval::Detection* found = nullptr;
        for (const auto& d : dets)
            if (d.cls == p.global_class) found = &d;
        ASSERT_NE(found, nullptr);
        EXPECT_EQ(found->image, kOffset + p.image);
        EXPECT_NEAR(found->score, score, 1e-5);
        // Boxes are clamped to the image.
        const float y1 = std::max(p.expected.y1, 0.0f);
        EXPECT_NEAR(found->box.x1, p.expected.x1, 1e-3);
        EXPECT_NEAR(found->box.y1, y1, 1e-3);
        EXPECT_NEAR(found->box.x2, p.expected.x2, 1e-3);
        EXPECT_NEAR(found->box.y2, p.expected.y2, 1e-3);
    }
}

TEST(Decode, ConfidenceThresholdAppliesToObjectnessTimesClass) {
    auto outputs = empty_outputs(1);
    plant(outputs, planted()[0]);
    train::DecodeOptions options;
    options.conf_threshold = 0.85f;  // score 0.8808 x 0.9526 = 0.839
    EXPECT_TRUE(
        train::decode_detections(outputs, model::default_anchors(), kImg, options, 0).empty());
    options.conf_threshold = 0.83f;
    EXPECT_EQ(train::decode_detections(outputs, model::default_anchors(), kImg, options, 0).size(),
              1u);
}

}  // namespace
