// The detection loss checked directly: which cells and anchors a target trains, which head and
// local class a global class trains, per-layer weights and the per-scale objectness balance.
// Head outputs are leaf tensors, so the gradient the loss sends into each tells what it trained.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>
#include <tuple>

#include "worker/model/detector.hpp"
#include "worker/train/loss.hpp"

namespace {

using namespace smartcash;
using Outputs = std::vector<std::vector<torch::Tensor>>;
using Cell = std::tuple<int, int, int>;  // anchor, gj (row), gi (column)

constexpr int kImg = 256;  // grids 32, 16, 8

/// Raw head maps for every layer and scale, random and requiring grad.
Outputs random_outputs(std::int64_t batch, std::uint64_t seed) {
    torch::manual_seed(seed);
    Outputs out;
    for (const auto& layer : model::detection_layers()) {
        std::vector<torch::Tensor> scales;
        for (int stride : model::strides) {
            const std::int64_t g = kImg / stride;
            scales.push_back(
                (torch::randn({batch, model::anchors_per_scale, g, g, 5 + layer.num_classes}) * 0.5)
                    .requires_grad_(true));
        }
        out.push_back(std::move(scales));
    }
    return out;
}

/// A target row (image, global class, cx, cy, w, h) from pixel values.
torch::Tensor target(int image, int cls, double cx, double cy, double w, double h) {
    return torch::tensor({static_cast<float>(image), static_cast<float>(cls),
                          static_cast<float>(cx / kImg), static_cast<float>(cy / kImg),
                          static_cast<float>(w / kImg), static_cast<float>(h / kImg)})
        .view({1, 6});
}

train::LossParts run_loss(const LossConfig& config, Outputs& outputs,
                          const torch::Tensor& targets) {
    train::YoloLoss loss(config, model::default_anchors());
    auto parts = loss(outputs, targets, kImg);
    parts.sum.backward();
    return parts;
}

/// The (anchor, row, column) positions whose box channels (tx, ty, tw, th) received gradient.
std::set<Cell> box_trained(const torch::Tensor& head_map) {
    auto g = head_map.grad();
    std::set<Cell> cells;
    if (!g.defined()) return cells;
    auto hit = g.index({0, "...", torch::indexing::Slice(0, 4)}).abs().amax(-1) > 0;  // [A, H, W]
    auto idx = hit.nonzero();
    for (std::int64_t i = 0; i < idx.size(0); ++i) {
        cells.insert({static_cast<int>(idx[i][0].item<std::int64_t>()),
                      static_cast<int>(idx[i][1].item<std::int64_t>()),
                      static_cast<int>(idx[i][2].item<std::int64_t>())});
    }
    return cells;
}

/// All (anchor, row, column) combinations of the given anchors and (column, row) cells.
std::set<Cell> cells_for(std::initializer_list<int> anchors,
                         std::initializer_list<std::pair<int, int>> columns_rows) {
    std::set<Cell> out;
    for (int a : anchors)
        for (const auto& [gi, gj] : columns_rows) out.insert({a, gj, gi});
    return out;
}

double abs_sum(const torch::Tensor& grad) {
    return grad.defined() ? grad.abs().sum().item<double>() : 0.0;
}

std::string describe(const std::set<Cell>& cells) {
    std::string s;
    for (const auto& [a, gj, gi] : cells)
        s += "(a" + std::to_string(a) + " row " + std::to_string(gj) + " col " +
             std::to_string(gi) + ") ";
    return s.empty() ? "none" : s;
}

// A 45 x 20 px target against the anchors (ratio limit 4): at stride 8, anchor 10x13 is 4.5x too
// narrow and is excluded, 16x30 and 33x23 match; at stride 16, 30x61 and 62x45 match and 59x119
// (5.95x too tall) does not; at stride 32 no anchor matches.
constexpr double kW = 45, kH = 20;

TEST(LossAssignment, TargetAtCellFractionPointThreeTrainsItsCellAndTheLeftAndUpperNeighbours) {
    // Centre at (10.3, 6.3) cells of the stride-8 grid, i.e. (5.15, 3.15) at stride 16: both
    // fractions are below 0.5, so the neighbours on the left and above join the centre cell.
    auto outputs = random_outputs(1, 11);
    run_loss(LossConfig{}, outputs, target(0, 0, 10.3 * 8, 6.3 * 8, kW, kH));
    EXPECT_EQ(box_trained(outputs[0][0]), cells_for({1, 2}, {{10, 6}, {9, 6}, {10, 5}}))
        << describe(box_trained(outputs[0][0]));
    EXPECT_EQ(box_trained(outputs[0][1]), cells_for({0, 1}, {{5, 3}, {4, 3}, {5, 2}}))
        << describe(box_trained(outputs[0][1]));
    EXPECT_TRUE(box_trained(outputs[0][2]).empty()) << describe(box_trained(outputs[0][2]));
    for (std::size_t li = 1; li < 3; ++li)
        for (const auto& map : outputs[li])
            EXPECT_TRUE(box_trained(map).empty()) << "layer " << li + 1;
}

TEST(LossAssignment, TargetPastTheCellMiddleTrainsTheRightAndLowerNeighbours) {
    // (20.7, 12.6) cells at stride 8; (10.35, 6.3) at stride 16.
    auto outputs = random_outputs(1, 12);
    run_loss(LossConfig{}, outputs, target(0, 3, 20.7 * 8, 12.6 * 8, kW, kH));
    EXPECT_EQ(box_trained(outputs[0][0]), cells_for({1, 2}, {{20, 12}, {21, 12}, {20, 13}}))
        << describe(box_trained(outputs[0][0]));
    EXPECT_EQ(box_trained(outputs[0][1]), cells_for({0, 1}, {{10, 6}, {9, 6}, {10, 5}}))
        << describe(box_trained(outputs[0][1]));
}

TEST(LossAssignment, AnchorRatioThresholdDecidesWhichAnchorsMatch) {
    // At a limit of 5 the 10x13 anchor (4.5x) matches too; at 2 only 33x23 (1.36x, 1.15x) does.
    LossConfig wide;
    wide.anchor_threshold = 5.0;
    auto outputs = random_outputs(1, 13);
    run_loss(wide, outputs, target(0, 0, 10.3 * 8, 6.3 * 8, kW, kH));
    EXPECT_EQ(box_trained(outputs[0][0]), cells_for({0, 1, 2}, {{10, 6}, {9, 6}, {10, 5}}))
        << describe(box_trained(outputs[0][0]));

    LossConfig narrow;
    narrow.anchor_threshold = 2.0;
    outputs = random_outputs(1, 13);
    run_loss(narrow, outputs, target(0, 0, 10.3 * 8, 6.3 * 8, kW, kH));
    EXPECT_EQ(box_trained(outputs[0][0]), cells_for({2}, {{10, 6}, {9, 6}, {10, 5}}))
        << describe(box_trained(outputs[0][0]));
}

TEST(LossAssignment, NoNeighbourOutsideTheGrid) {
    // Centre at (0.3, 0.3) cells: the left and upper neighbours would lie outside the grid.
    auto outputs = random_outputs(1, 14);
    run_loss(LossConfig{}, outputs, target(0, 0, 0.3 * 8, 0.3 * 8, 14, 20));
    // 14 x 20 px matches 10x13 and 16x30 at stride 8 (33x23: 2.36x; all within 4).
    EXPECT_EQ(box_trained(outputs[0][0]), cells_for({0, 1, 2}, {{0, 0}}))
        << describe(box_trained(outputs[0][0]));
}

TEST(LossRouting, ClassNineTrainsLayerTwoAsItsLocalClassTwo) {
    auto outputs = random_outputs(2, 21);
    // Image 1 of the batch; image 0 has no object.
    run_loss(LossConfig{}, outputs, target(1, 9, 10.3 * 8, 6.3 * 8, kW, kH));
    for (std::size_t li : {0u, 2u}) {
        for (const auto& map : outputs[li]) {
            auto g = map.grad();
            ASSERT_TRUE(g.defined());
            EXPECT_EQ(abs_sum(g.narrow(-1, 0, 4)), 0.0) << "layer " << li + 1 << " box channels";
            EXPECT_EQ(abs_sum(g.narrow(-1, 5, g.size(-1) - 5)), 0.0)
                << "layer " << li + 1 << " class channels";
        }
    }
    const auto& p3 = outputs[1][0];
    auto g = p3.grad();
    EXPECT_EQ(abs_sum(g[0].narrow(-1, 0, 4)), 0.0) << "image 0 has no object";
    // The stride-8 cells of image 1: class channel 5 + 2 is pulled up, the other six down.
    auto hit = g[1].narrow(-1, 0, 4).abs().amax(-1) > 0;  // [A, H, W]
    auto idx = hit.nonzero();
    ASSERT_EQ(idx.size(0), 6) << "2 anchors x 3 cells";
    for (std::int64_t i = 0; i < idx.size(0); ++i) {
        auto cls_grad = g[1][idx[i][0]][idx[i][1]][idx[i][2]].narrow(0, 5, 7);
        for (int c = 0; c < 7; ++c) {
            const double v = cls_grad[c].item<double>();
            if (c == 2)
                EXPECT_LT(v, 0.0) << "local class 2 is the target";
            else
                EXPECT_GT(v, 0.0) << "local class " << c << " is not the target";
        }
    }
}

TEST(LossWeights, ZeroLayerWeightGivesNoGradientInThatHead) {
    LossConfig config;
    config.layer_weights["layer_3"] = 0.0;
    auto targets = torch::cat({target(0, 2, 60, 80, 40, 24), target(0, 9, 150, 60, 20, 36),
                               target(0, 15, 100, 180, 30, 18)});
    auto outputs = random_outputs(1, 31);
    run_loss(config, outputs, targets);
    for (const auto& map : outputs[2]) EXPECT_EQ(abs_sum(map.grad()), 0.0);
    for (std::size_t li : {0u, 1u})
        for (const auto& map : outputs[li]) EXPECT_GT(abs_sum(map.grad()), 0.0);

    // Through the model: no parameter of the layer_3 head gets gradient; the other heads do.
    torch::manual_seed(32);
    model::DetectorOptions o;
    o.width_multiple = 0.1;
    o.depth_multiple = 0.2;
    model::Detector detector(o);
    auto images = torch::rand({1, 3, kImg, kImg});
    auto model_outputs = detector->forward(images);
    train::YoloLoss loss(config, detector->anchors());
    loss(model_outputs, targets, kImg).sum.backward();
    double head1 = 0, head2 = 0, head3 = 0;
    int head3_params = 0;
    for (const auto& item : detector->named_parameters()) {
        const double g = abs_sum(item.value().grad());
        if (item.key().rfind("head_layer_1.", 0) == 0) head1 += g;
        if (item.key().rfind("head_layer_2.", 0) == 0) head2 += g;
        if (item.key().rfind("head_layer_3.", 0) == 0) {
            head3 += g;
            ++head3_params;
        }
    }
    EXPECT_GT(head3_params, 0);
    EXPECT_EQ(head3, 0.0);
    EXPECT_GT(head1, 0.0);
    EXPECT_GT(head2, 0.0);
}

TEST(LossWeights, ObjectnessBalanceWeighsEachScale) {
    // No objects: the objectness loss of a head is sum over scales of balance[s] x mean BCE(logit,
    // 0), and BCE(x, 0) = log(1 + e^x). With one constant logit per scale it is worked out here.
    const std::array<double, 3> logits = {0.3, -1.2, 2.0};
    auto softplus = [](double x) { return std::log1p(std::exp(x)); };
    for (const std::vector<double>& balance :
         {std::vector<double>{4.0, 1.0, 0.4}, std::vector<double>{0.5, 2.0, 3.0}}) {
        LossConfig config;
        config.obj_balance = balance;
        config.obj = 0.7;
        Outputs outputs;
        for (const auto& layer : model::detection_layers()) {
            std::vector<torch::Tensor> scales;
            for (int si = 0; si < 3; ++si) {
                const std::int64_t g = kImg / model::strides[static_cast<std::size_t>(si)];
                auto map = torch::zeros({2, 3, g, g, 5 + layer.num_classes});
                map.select(-1, 4).fill_(logits[static_cast<std::size_t>(si)]);
                scales.push_back(map.requires_grad_(true));
            }
            outputs.push_back(std::move(scales));
        }
        const auto parts = run_loss(config, outputs, torch::zeros({0, 6}));
        double per_head = 0;
        for (int si = 0; si < 3; ++si)
            per_head += balance[static_cast<std::size_t>(si)] *
                        softplus(logits[static_cast<std::size_t>(si)]);
        const double expected = 0.7 * per_head * (1.0 + 0.5 + 0.5);  // default layer weights
        EXPECT_NEAR(parts.obj, expected, 1e-5 * expected);
        EXPECT_NEAR(parts.sum.item<double>(), 2 * expected, 2e-5 * expected) << "two images";
        EXPECT_EQ(parts.box, 0.0);
        EXPECT_EQ(parts.cls, 0.0);
    }
}

}  // namespace

namespace {

// The logged parts (box, obj, cls) were read back layer by layer, one host read per part and
// layer, each float sum accumulated in double. They are now read back once at the end; the values
// must be those of the per-layer reads. A run with every other layer's weight at zero gives one
// layer's sums alone (the other layers add exact zeros), and with two images the halving and
// doubling are exact, so the per-layer reads can be rebuilt and compared bit for bit.
TEST(LossParts, OneHostReadGivesThePerLayerSumsAccumulatedInDouble) {
    LossConfig config;
    const auto targets =
        torch::cat({target(0, 2, 100, 120, 45, 20), target(1, 9, 60, 70, 30, 40),
                    target(0, 15, 200, 180, 12, 30), target(1, 4, 30, 200, 80, 60)});
    const auto& layers = model::detection_layers();
    auto outputs = random_outputs(2, 5);
    const auto all = run_loss(config, outputs, targets);
    double box = 0, obj = 0, cls = 0;
    for (const auto& only : layers) {
        LossConfig one = config;
        for (const auto& other : layers) {
            const double w =
                config.layer_weights.count(other.name) ? config.layer_weights.at(other.name) : 1.0;
            one.layer_weights[other.name] = other.name == only.name ? w : 0.0;
        }
        auto fresh = random_outputs(2, 5);
        const auto parts = run_loss(one, fresh, targets);
        box += parts.box * 2.0;
        obj += parts.obj * 2.0;
        cls += parts.cls * 2.0;
    }
    EXPECT_EQ(all.box, box / 2.0);
    EXPECT_EQ(all.obj, obj / 2.0);
    EXPECT_EQ(all.cls, cls / 2.0);
    EXPECT_GT(all.box, 0.0);
    EXPECT_GT(all.obj, 0.0);
    EXPECT_GT(all.cls, 0.0);
    // And the parts still add up to the loss per image.
    EXPECT_NEAR(all.box + all.obj + all.cls, all.sum.item<double>() / 2.0, 1e-5);
}

}  // namespace
