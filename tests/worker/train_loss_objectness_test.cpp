// The objectness target of the detection loss, read back from the gradient it sends into the
// objectness logits. docs/evaluation.md: at a trained cell the target is the CIoU of the cell's
// predicted box with its truth, clamped at 0 and detached; elsewhere it is 0.
//
// The objectness term of one image is sum over layers and scales of layer_weight x obj x
// balance[scale] x mean over the map's cells of BCE(logit, target), so the gradient at one cell
// is k (s(logit) - target) / n with k = layer_weight x obj x balance and n the number of cells
// of that map (anchors x rows x columns). With every logit at 0, s(logit) = 1/2 and the target
// of each cell is 1/2 - gradient x n / k.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "worker/model/detector.hpp"
#include "worker/train/loss.hpp"

namespace {

using namespace smartcash;
using Outputs = std::vector<std::vector<torch::Tensor>>;

constexpr int kImg = 256;  // grids 32, 16, 8

// The worked example. One layer_1 truth of 16 x 30 px (anchor 1 of stride 8 exactly, 2 x 3.75
// grid cells) centred at (86, 52) px = (10.75, 6.5) cells of the stride-8 grid. With the anchor
// ratio limit at 1.5 no other anchor of any scale matches (the nearest, 10x13 and 30x61, are 1.6
// and 1.875 times off). The centre's fractions are (0.75, 0.5): it trains its own cell (column 10,
// row 6) and the right neighbour (column 11); 0.5 is neither above nor below the middle, so no
// row neighbour.
constexpr int kAnchor = 1, kRow = 6, kCentreCol = 10, kRightCol = 11;

LossConfig worked_config() {
    LossConfig c;
    c.anchor_threshold = 1.5;
    c.obj = 1.0;
    c.obj_balance = {4.0, 1.0, 0.4};
    c.layer_weights = {{"layer_1", 1.0}, {"layer_2", 0.5}, {"layer_3", 0.5}};
    return c;
}

torch::Tensor worked_truth() {
    return torch::tensor({0.0f, 0.0f, 86.0f / kImg, 52.0f / kImg, 16.0f / kImg, 30.0f / kImg})
        .view({1, 6});
}

/// Head maps for one image, every logit 0, requiring grad.
Outputs zero_outputs() {
    Outputs out;
    for (const auto& layer : model::detection_layers()) {
        std::vector<torch::Tensor> scales;
        for (int stride : model::strides) {
            const std::int64_t g = kImg / stride;
            scales.push_back(
                torch::zeros({1, model::anchors_per_scale, g, g, 5 + layer.num_classes})
                    .requires_grad_(true));
        }
        out.push_back(std::move(scales));
    }
    return out;
}

void backward(const LossConfig& config, Outputs& outputs) {
    train::YoloLoss loss(config, model::default_anchors());
    loss(outputs, worked_truth(), kImg).sum.backward();
}

/// The objectness target of every cell of one map ([A, H, W]) where the logit is 0.
torch::Tensor targets_of(const LossConfig& config, const torch::Tensor& map, std::size_t layer,
                         std::size_t scale) {
    const auto& name = model::detection_layers()[layer].name;
    const double k = config.layer_weights.at(name) * config.obj * config.obj_balance.at(scale);
    const double n = static_cast<double>(map.size(1) * map.size(2) * map.size(3));
    return 0.5 - map.grad()[0].select(-1, 4).to(torch::kFloat64) * (n / k);
}

double target_at(const torch::Tensor& targets, int col) {
    return targets[kAnchor][kRow][col].item<double>();
}

/// Every cell of every map other than the two trained ones has target 0.
void expect_zero_elsewhere(const LossConfig& config, const Outputs& outputs) {
    for (std::size_t li = 0; li < outputs.size(); ++li) {
        for (std::size_t si = 0; si < outputs[li].size(); ++si) {
            auto t = targets_of(config, outputs[li][si], li, si);
            if (li == 0 && si == 0) {
                t[kAnchor][kRow][kCentreCol] = 0.0;
                t[kAnchor][kRow][kRightCol] = 0.0;
            }
            EXPECT_LT(t.abs().max().item<double>(), 1e-6) << "layer " << li + 1 << " scale " << si;
        }
    }
}

TEST(ObjectnessTarget, IsTheCiouOfEachTrainedCellWorkedOutByHand) {
    // Logits 0: every predicted box sits at the cell's middle (2 s(0) - 0.5 = 0.5) with the
    // anchor's size ((2 s(0))^2 = 1), 2 x 3.75 cells, the truth's size, so the aspect term v of
    // CIoU is 0 and CIoU = IoU - rho^2 / c^2 (rho: centre distance, c: enclosing box diagonal).
    //
    // Own cell: truth centre (0.75, 0.5), prediction (0.5, 0.5). x spans [-0.25, 1.75] and
    // [-0.5, 1.5], 1.75 in common, same rows: IoU = 1.75 / 2.25 = 7/9. Enclosing box 2.25 x 3.75,
    // c^2 = 5.0625 + 14.0625 = 19.125; rho^2 = 0.25^2.
    const double own = 7.0 / 9.0 - 0.0625 / 19.125;
    // Right neighbour: the truth's centre is (-0.25, 0.5) from that cell. x spans [-1.25, 0.75]
    // and [-0.5, 1.5], 1.25 in common: IoU = 1.25 / 2.75 = 5/11. Enclosing 2.75 x 3.75, c^2 =
    // 7.5625 + 14.0625 = 21.625; rho^2 = 0.75^2.
    const double right = 5.0 / 11.0 - 0.5625 / 21.625;
    // torchvision.ops.complete_box_iou gives the same for these boxes (0.774510, 0.428534).
    ASSERT_NEAR(own, 0.774510, 1e-6);
    ASSERT_NEAR(right, 0.428534, 1e-6);

    const auto config = worked_config();
    auto outputs = zero_outputs();
    backward(config, outputs);
    const auto t = targets_of(config, outputs[0][0], 0, 0);
    EXPECT_NEAR(target_at(t, kCentreCol), own, 1e-5);
    EXPECT_NEAR(target_at(t, kRightCol), right, 1e-5);
    expect_zero_elsewhere(config, outputs);
}

TEST(ObjectnessTarget, IsZeroWhereThePredictedBoxHasANegativeCiou) {
    // Box logits of -8 at both trained cells: the prediction shrinks to a dot (side (2 s(-8))^2 x
    // anchor, under 1e-6 cells) near the cell's corner (2 s(-8) - 0.5 = -0.4993). At the own cell
    // the dot lies left of the truth (x from -0.25): IoU 0, CIoU = -rho^2/c^2 - alpha v, about
    // -0.13. At the right neighbour it lies inside the truth: IoU about 1e-13 and CIoU about
    // -1.06 / 18.06 = -0.06. Both targets must be 0, not these negative values.
    const auto config = worked_config();
    auto outputs = zero_outputs();
    {
        torch::NoGradGuard no_grad;
        for (int col : {kCentreCol, kRightCol})
            outputs[0][0][0][kAnchor][kRow][col].narrow(0, 0, 4).fill_(-8.0);
    }
    // The CIoUs really are negative (the loss's own complete_iou, in grid cells).
    const double corner = 2.0 / (1.0 + std::exp(8.0)) - 0.5;
    const double side = std::pow(4.0 / (1.0 + std::exp(8.0)), 2);
    auto pred = torch::tensor({corner, corner, side * 2.0, side * 3.75}, torch::kFloat64);
    auto truths = torch::tensor({{0.75, 0.5, 2.0, 3.75}, {-0.25, 0.5, 2.0, 3.75}}, torch::kFloat64);
    const auto ciou = train::complete_iou(pred.expand({2, 4}), truths);
    ASSERT_LT(ciou[0].item<double>(), -0.1);
    ASSERT_LT(ciou[1].item<double>(), -0.05);

    backward(config, outputs);
    const auto t = targets_of(config, outputs[0][0], 0, 0);
    EXPECT_NEAR(target_at(t, kCentreCol), 0.0, 1e-5) << "CIoU " << ciou[0].item<double>();
    EXPECT_NEAR(target_at(t, kRightCol), 0.0, 1e-5) << "CIoU " << ciou[1].item<double>();
    expect_zero_elsewhere(config, outputs);
}

TEST(ObjectnessTarget, IsDetachedFromTheBoxChannels) {
    // With the box and class terms weighted 0, only the objectness term sends gradient. Its
    // target is a function of the predicted box, but a detached one: the box channels (tx, ty,
    // tw, th) of the trained cells get exactly nothing.
    auto config = worked_config();
    config.box = 0.0;
    config.cls = 0.0;
    auto outputs = zero_outputs();
    {
        // Box logits away from the symmetric middle, so that every box channel moves the CIoU,
        // and an objectness logit other than 0: d BCE(x, t) / dt = -x, so at x = 0 even an
        // attached target would send nothing back.
        torch::NoGradGuard no_grad;
        for (int col : {kCentreCol, kRightCol})
            outputs[0][0][0][kAnchor][kRow][col].narrow(0, 0, 5).copy_(
                torch::tensor({0.3f, -0.4f, 0.2f, -0.1f, 1.5f}));
    }
    backward(config, outputs);
    const auto g = outputs[0][0].grad()[0][kAnchor][kRow];
    for (int col : {kCentreCol, kRightCol}) {
        EXPECT_EQ(g[col].narrow(0, 0, 4).abs().max().item<double>(), 0.0)
            << "box channels of column " << col << ": " << g[col].narrow(0, 0, 4);
        EXPECT_NE(g[col][4].item<double>(), 0.0) << "objectness of column " << col;
    }
    for (const auto& layer : outputs)
        for (const auto& map : layer)
            EXPECT_EQ(map.grad().narrow(-1, 0, 4).abs().max().item<double>(), 0.0);

    // The same cells with the box term on: their box channels are trained, so the zeros above are
    // the detachment's, not cells the loss never reaches.
    config.box = 0.05;
    auto again = zero_outputs();
    backward(config, again);
    const auto trained = again[0][0].grad()[0][kAnchor][kRow];
    for (int col : {kCentreCol, kRightCol})
        EXPECT_GT(trained[col].narrow(0, 0, 4).abs().max().item<double>(), 0.0);
}

}  // namespace
