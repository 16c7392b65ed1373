// One forward + backward of each full-size detector at 640 px, batch 1 (slow: names contain
// "FullSize" so quick runs can filter them out with --gtest_filter=-*FullSize*).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <iostream>

#include "worker/model/detector.hpp"

namespace smartcash::model {
namespace {

void forward_backward_640(Backbone backbone, bool checkpointing) {
    torch::manual_seed(0);
    DetectorOptions options;
    options.backbone = backbone;
    Detector detector(options);
    detector->set_activation_checkpointing(checkpointing);
    detector->train();
    const auto images = torch::rand({1, 3, 640, 640});

    const auto start = std::chrono::steady_clock::now();
    const auto outputs = detector->forward(images);
    auto loss = torch::zeros({});
    for (size_t l = 0; l < outputs.size(); ++l) {
        for (int s = 0; s < num_scales; ++s) {
            const int64_t cells = 640 / strides[s];
            EXPECT_EQ(outputs[l][s].sizes().vec(),
                      (std::vector<int64_t>{1, anchors_per_scale, cells, cells,
                                            5 + detection_layers()[l].num_classes}));
            loss = loss + outputs[l][s].sigmoid().mean();
        }
    }
    loss.backward();
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    std::cout << "[ timing   ] "
              << (backbone == Backbone::efficientnet_b4 ? "efficientnet_b4" : "cspdarknet")
              << (checkpointing ? " (checkpointing)" : "")
              << " forward+backward 640 px batch 1: " << elapsed.count() << " s on "
              << torch::get_num_threads() << " threads\n";

    for (const auto& p : detector->parameters()) {
        ASSERT_TRUE(p.grad().defined());
        ASSERT_TRUE(torch::isfinite(p.grad()).all().item<bool>());
    }
}

TEST(ModelFullSize, EfficientNetB4ForwardBackward640) {
    forward_backward_640(Backbone::efficientnet_b4, /*checkpointing=*/false);
}

TEST(ModelFullSize, CspDarknetForwardBackward640) {
    forward_backward_640(Backbone::cspdarknet, /*checkpointing=*/false);
}

}  // namespace
}  // namespace smartcash::model
