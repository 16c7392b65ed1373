// Parameter counts against published figures, parameter groups, and the phase-1 freeze helper.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <map>

#include "model_test_util.hpp"

namespace smartcash::model {
namespace {

using testing::tiny_options;

int64_t numel(const std::vector<torch::Tensor>& params) {
    int64_t n = 0;
    for (const auto& p : params) {
        n += p.numel();
    }
    return n;
}

TEST(ParameterCounts, EfficientNetB4BackboneMatchesTheReference) {
    // torchvision's efficientnet_b4 has 19,341,616 parameters (EfficientNet_B4_Weights
    // meta "num_params"). Our backbone is its `features[0..7]` (stem and the seven stages): take
    // away the 448->1792 head conv (802,816), its batch norm (3,584) and the 1792->1000
    // classifier (1,793,000): 16,742,216.
    constexpr int64_t reference_total = 19'341'616;
    constexpr int64_t head_conv = 448 * 1792, head_bn = 2 * 1792, classifier = 1792 * 1000 + 1000;
    Detector detector(DetectorOptions{});
    const auto counts = count_parameters(*detector);
    EXPECT_EQ(counts.backbone, reference_total - head_conv - head_bn - classifier);
    EXPECT_EQ(counts.backbone, 16'742'216);
    EXPECT_EQ(counts.backbone + counts.adapters + counts.neck + counts.head, counts.total);
    std::cout << "efficientnet_b4 " << to_json(counts).dump() << "\n";
}

TEST(ParameterCounts, CspDarknetBackboneMatchesYoloV5) {
    // YOLOv5 model summaries list per-layer parameters; layers 0-9 are the backbone. v5s
    // (width 0.5, depth 0.33): 3,520 + 18,560 + 18,816 + 73,984 + 115,712 + 295,424 + 625,152 +
    // 1,180,672 + 1,182,720 + 656,896 = 4,171,456. v5m (width 0.75, depth 0.67): 5,280 + 41,664 +
    // 65,280 + 166,272 + 444,672 + 664,320 + 2,512,896 + 2,655,744 + 4,134,912 + 1,476,864 =
    // 12,167,904.
    DetectorOptions v5s;
    v5s.backbone = Backbone::cspdarknet;
    Detector small(v5s);
    const auto counts = count_parameters(*small);
    EXPECT_EQ(counts.backbone, 4'171'456);
    EXPECT_EQ(counts.backbone + counts.adapters + counts.neck + counts.head, counts.total);
    std::cout << "cspdarknet " << to_json(counts).dump() << "\n";

    DetectorOptions v5m = v5s;
    v5m.width_multiple = 0.75 / 0.5;
    v5m.depth_multiple = 0.67 / 0.33;
    Detector medium(v5m);
    EXPECT_EQ(count_parameters(*medium).backbone, 12'167'904);
}

TEST(ParameterCounts, YoloV5sNeckAndHeadSizes) {
    // The neck is YOLOv5s' head section without its Detect layer (layers 10-23 of its model
    // summary): 131,584 + 361,984 + 33,024 + 90,880 + 147,712 + 296,448 + 590,336 + 1,182,720 =
    // 2,834,688. Each YOLO head is 3 x (c_in * 3(5 + nc) + 3(5 + nc)).
    DetectorOptions options;
    options.backbone = Backbone::cspdarknet;
    Detector detector(options);
    const auto counts = count_parameters(*detector);
    EXPECT_EQ(counts.neck, 2'834'688);
    int64_t head = 0;
    for (const auto& layer : detection_layers()) {
        const int64_t outputs = 3 * (5 + layer.num_classes);
        head += (128 + 256 + 512) * outputs + 3 * outputs;
    }
    EXPECT_EQ(counts.head, head);
    // Adapters 128->128, 256->256, 512->512 with batch norm.
    EXPECT_EQ(counts.adapters, (128 * 128 + 256 * 256 + 512 * 512) + 2 * (128 + 256 + 512));
}

TEST(ParameterCounts, JsonHasEveryComponent) {
    const ParameterCounts counts{1, 2, 3, 4, 10};
    const auto json = to_json(counts);
    EXPECT_EQ(json.at("backbone"), 1);
    EXPECT_EQ(json.at("adapters"), 2);
    EXPECT_EQ(json.at("neck"), 3);
    EXPECT_EQ(json.at("head"), 4);
    EXPECT_EQ(json.at("total"), 10);
    EXPECT_EQ(json.size(), 5u);
}

class ParameterGroups : public ::testing::TestWithParam<Backbone> {};

TEST_P(ParameterGroups, CoverEveryParameterExactlyOnce) {
    Detector detector(tiny_options(GetParam()));
    std::map<const void*, int> seen;
    const std::vector<std::vector<torch::Tensor>> groups{
        detector->backbone_parameters(), detector->neck_parameters(), detector->head_parameters()};
    for (const auto& group : groups) {
        EXPECT_FALSE(group.empty());
        for (const auto& p : group) {
            ++seen[p.unsafeGetTensorImpl()];
        }
    }
    const auto all = detector->parameters();
    EXPECT_EQ(seen.size(), all.size());
    for (const auto& p : all) {
        EXPECT_EQ(seen[p.unsafeGetTensorImpl()], 1);
    }
    // The adapters and the FPN/PAN split the neck group.
    EXPECT_EQ(numel(detector->adapter_parameters()) + numel(detector->fpn_pan_parameters()),
              numel(detector->neck_parameters()));
    const auto counts = count_parameters(*detector);
    EXPECT_EQ(counts.backbone + counts.adapters + counts.neck + counts.head, counts.total);
    EXPECT_EQ(counts.total, numel(all));
}

INSTANTIATE_TEST_SUITE_P(Backbones, ParameterGroups,
                         ::testing::Values(Backbone::efficientnet_b4, Backbone::cspdarknet),
                         testing::BackboneName());

TEST(BackboneFreeze, PhaseOneLeavesTheBackboneBitIdentical) {
    torch::manual_seed(0);
    Detector detector(tiny_options(Backbone::efficientnet_b4));
    detector->set_backbone_frozen(true);
    detector->train();  // must not wake the frozen backbone
    EXPECT_FALSE(detector->backbone_module().is_training());
    EXPECT_TRUE(detector->is_training());

    std::vector<torch::Tensor> backbone_before;
    for (const auto& t : detector->backbone_module().parameters()) {
        backbone_before.push_back(t.detach().clone());
    }
    for (const auto& t : detector->backbone_module().buffers()) {
        backbone_before.push_back(t.detach().clone());  // batch-norm statistics too
    }
    std::vector<torch::Tensor> head_before;
    for (const auto& t : detector->head_parameters()) {
        head_before.push_back(t.detach().clone());
    }

    // The optimizer gets every parameter, as a careless caller would: freezing must still hold.
    torch::optim::SGD sgd(detector->parameters(), torch::optim::SGDOptions(0.1));
    for (int step = 0; step < 2; ++step) {
        sgd.zero_grad();
        auto loss = torch::zeros({});
        for (const auto& layer : detector->forward(torch::randn({2, 3, 32, 32}))) {
            for (const auto& scale : layer) {
                loss = loss + scale.pow(2).mean();
            }
        }
        loss.backward();
        sgd.step();
    }

    size_t i = 0;
    for (const auto& t : detector->backbone_module().parameters()) {
        EXPECT_FALSE(t.requires_grad());
        EXPECT_TRUE(torch::equal(t, backbone_before[i++]));
    }
    for (const auto& t : detector->backbone_module().buffers()) {
        EXPECT_TRUE(torch::equal(t, backbone_before[i++]));
    }
    bool head_changed = false;
    for (size_t h = 0; h < head_before.size(); ++h) {
        head_changed =
            head_changed || !torch::equal(detector->head_parameters()[h], head_before[h]);
    }
    EXPECT_TRUE(head_changed);

    detector->set_backbone_frozen(false);
    EXPECT_TRUE(detector->backbone_module().is_training());
    for (const auto& t : detector->backbone_parameters()) {
        EXPECT_TRUE(t.requires_grad());
    }
}

}  // namespace
}  // namespace smartcash::model
