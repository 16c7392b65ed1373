// Activation checkpointing must change memory use only: same outputs, same gradients, same
// batch-norm statistics, same random-number stream afterwards.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "model_test_util.hpp"

namespace smartcash::model {
namespace {

using testing::tiny_options;

struct Pass {
    std::vector<torch::Tensor> outputs;
    std::vector<torch::Tensor> grads;
    std::vector<torch::Tensor> buffers;
    torch::Tensor rng_after;  ///< the next draws of the CPU generator after the pass
};

std::vector<torch::Tensor> clone_all(const std::vector<torch::Tensor>& tensors) {
    std::vector<torch::Tensor> copies;
    for (const auto& t : tensors) {
        copies.push_back(t.detach().clone());
    }
    return copies;
}

/// One training forward + backward from the same starting buffers and seed.
Pass run_pass(Detector& detector, const torch::Tensor& images,
              const std::vector<torch::Tensor>& initial_buffers, bool checkpointing, uint64_t seed,
              bool channels_last = false) {
    {
        torch::NoGradGuard no_grad;
        auto buffers = detector->buffers();
        for (size_t i = 0; i < buffers.size(); ++i) {
            buffers[i].copy_(initial_buffers[i]);
        }
    }
    for (auto& p : detector->parameters()) {
        p.mutable_grad() = torch::Tensor();
    }
    detector->set_activation_checkpointing(checkpointing);
    detector->set_channels_last(channels_last);
    detector->train();
    torch::manual_seed(seed);
    Pass pass;
    auto loss = torch::zeros({});
    for (const auto& layer : detector->forward(images)) {
        for (const auto& scale : layer) {
            pass.outputs.push_back(scale.detach().clone());
            loss = loss + scale.sin().mean();
        }
    }
    loss.backward();
    for (const auto& p : detector->parameters()) {
        pass.grads.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    }
    pass.buffers = clone_all(detector->buffers());
    pass.rng_after = torch::rand({16});
    return pass;
}

bool all_close(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b,
               std::string* where) {
    if (a.size() != b.size()) {
        *where = "different counts";
        return false;
    }
    for (size_t i = 0; i < a.size(); ++i) {
        if (!torch::allclose(a[i], b[i], /*rtol=*/1e-4, /*atol=*/1e-6)) {
            *where = "tensor " + std::to_string(i) + ", max abs difference " +
                     std::to_string((a[i] - b[i]).abs().max().item<double>());
            return false;
        }
    }
    return true;
}

/// Equal up to float rounding, as when the same sums are taken in another order: each pair's
/// difference is small against the larger of the tensor's own size and the size of all of them
/// together (a gradient that is zero in exact arithmetic, such as a batch norm's bias before
/// another batch norm, is rounding noise on both sides). Gradients of the first layers gather
/// the rounding of every layer above (about 2e-4 of their size here).
bool close_in_norm(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b,
                   std::string* where, double relative) {
    if (a.size() != b.size()) {
        *where = "different counts";
        return false;
    }
    double total = 0.0;
    for (const auto& t : a)
        if (t.is_floating_point()) total += std::pow(t.norm().item<double>(), 2);
    const double floor = 1e-2 * relative * std::sqrt(total);
    for (size_t i = 0; i < a.size(); ++i) {
        if (!a[i].is_floating_point()) {
            if (torch::equal(a[i], b[i])) continue;
            *where = "tensor " + std::to_string(i) + " differs";
            return false;
        }
        const double size = a[i].norm().item<double>();
        const double diff = (a[i] - b[i]).norm().item<double>();
        if (diff > relative * size + floor) {
            *where = "tensor " + std::to_string(i) + ", difference " + std::to_string(diff) +
                     " for a size of " + std::to_string(size);
            return false;
        }
    }
    return true;
}

class Checkpointing : public ::testing::TestWithParam<Backbone> {};

TEST_P(Checkpointing, SameGradientsStatisticsAndRandomStream) {
    torch::manual_seed(0);
    // A high stochastic-depth rate so that a wrong mask in the recompute shows in the gradients.
    Detector detector(tiny_options(GetParam(), /*drop_connect=*/0.5));
    const auto images = torch::randn({4, 3, 64, 64});
    const auto initial = clone_all(detector->buffers());

    const auto plain = run_pass(detector, images, initial, /*checkpointing=*/false, 123);
    const auto recomputed = run_pass(detector, images, initial, /*checkpointing=*/true, 123);

    std::string where;
    EXPECT_TRUE(all_close(plain.outputs, recomputed.outputs, &where)) << "outputs: " << where;
    EXPECT_TRUE(all_close(plain.grads, recomputed.grads, &where)) << "gradients: " << where;
    // Running statistics are updated once per step, not once more by the recompute.
    EXPECT_TRUE(all_close(plain.buffers, recomputed.buffers, &where)) << "buffers: " << where;
    // The generator is left where the plain pass leaves it.
    EXPECT_TRUE(torch::equal(plain.rng_after, recomputed.rng_after));

    if (GetParam() == Backbone::efficientnet_b4) {
        // The comparison above is only meaningful if the masks matter: another seed must give
        // other gradients.
        const auto other = run_pass(detector, images, initial, /*checkpointing=*/false, 124);
        EXPECT_FALSE(all_close(plain.grads, other.grads, &where));
    }
}

// Channels-last activations in the backbone change only the order of the float sums inside the
// convolutions: the same outputs, gradients and statistics, and the default format outside.
TEST_P(Checkpointing, ChannelsLastBackboneSameOutputsAndGradients) {
    torch::manual_seed(0);
    Detector detector(tiny_options(GetParam(), /*drop_connect=*/0.5));
    const auto images = torch::randn({4, 3, 64, 64});
    const auto initial = clone_all(detector->buffers());

    const auto plain = run_pass(detector, images, initial, /*checkpointing=*/false, 123);
    const auto nhwc = run_pass(detector, images, initial, /*checkpointing=*/false, 123,
                               /*channels_last=*/true);
    EXPECT_TRUE(detector->channels_last());
    std::string where;
    EXPECT_TRUE(close_in_norm(plain.outputs, nhwc.outputs, &where, 1e-4)) << "outputs: " << where;
    EXPECT_TRUE(close_in_norm(plain.grads, nhwc.grads, &where, 1e-3)) << "gradients: " << where;
    EXPECT_TRUE(close_in_norm(plain.buffers, nhwc.buffers, &where, 1e-4)) << "buffers: " << where;
    EXPECT_TRUE(torch::equal(plain.rng_after, nhwc.rng_after));
    // Parameters and their gradients keep the default format (checkpoints, optimizer state).
    for (const auto& p : detector->parameters()) {
        EXPECT_TRUE(p.is_contiguous());
        if (p.grad().defined()) {
            EXPECT_TRUE(p.grad().is_contiguous());
        }
    }
    auto& backbone = dynamic_cast<FeatureExtractor&>(detector->backbone_module());
    for (const auto& f : backbone.forward(images)) EXPECT_TRUE(f.is_contiguous());
    // With checkpointing too.
    const auto both = run_pass(detector, images, initial, /*checkpointing=*/true, 123,
                               /*channels_last=*/true);
    EXPECT_TRUE(close_in_norm(plain.grads, both.grads, &where, 1e-3)) << "gradients: " << where;
    detector->set_channels_last(false);
}

TEST_P(Checkpointing, ActiveOnlyWhenTrainingWithGrad) {
    torch::manual_seed(0);
    Detector detector(tiny_options(GetParam()));
    detector->set_activation_checkpointing(true);
    EXPECT_TRUE(detector->activation_checkpointing());
    auto& backbone = dynamic_cast<FeatureExtractor&>(detector->backbone_module());
    const auto images = torch::randn({2, 3, 64, 64});

    auto p5_node = [&]() -> std::string {
        const auto p5 = backbone.forward(images)[2];
        return p5.grad_fn() ? p5.grad_fn()->name() : std::string("none");
    };
    detector->train();
    EXPECT_NE(p5_node().find("CheckpointFunction"), std::string::npos) << p5_node();
    detector->eval();
    EXPECT_EQ(p5_node().find("CheckpointFunction"), std::string::npos) << p5_node();
    detector->train();
    {
        torch::NoGradGuard no_grad;
        EXPECT_EQ(p5_node(), "none");
    }
    detector->set_activation_checkpointing(false);
    EXPECT_EQ(p5_node().find("CheckpointFunction"), std::string::npos) << p5_node();
}

TEST_P(Checkpointing, FrozenBackboneStillTrainsTheRest) {
    torch::manual_seed(0);
    Detector detector(tiny_options(GetParam()));
    detector->set_backbone_frozen(true);
    detector->set_activation_checkpointing(true);
    detector->train();
    auto loss = torch::zeros({});
    for (const auto& layer : detector->forward(torch::randn({2, 3, 32, 32}))) {
        for (const auto& scale : layer) {
            loss = loss + scale.pow(2).mean();
        }
    }
    loss.backward();
    for (const auto& p : detector->backbone_parameters()) {
        EXPECT_FALSE(p.grad().defined());
    }
    for (const auto& p : detector->neck_parameters()) {
        ASSERT_TRUE(p.grad().defined());
    }
    double head_grad = 0.0;
    for (const auto& p : detector->head_parameters()) {
        ASSERT_TRUE(p.grad().defined());
        head_grad += p.grad().abs().sum().item<double>();
    }
    EXPECT_GT(head_grad, 0.0);
}

INSTANTIATE_TEST_SUITE_P(Backbones, Checkpointing,
                         ::testing::Values(Backbone::efficientnet_b4, Backbone::cspdarknet),
                         testing::BackboneName());

}  // namespace
}  // namespace smartcash::model
