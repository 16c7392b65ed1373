// Activation checkpointing of a stage goes block by block: one checkpointed call per block of a
// torch::nn::Sequential (so only the blocks' inputs stay resident and the backward pass recomputes
// one block at a time), with the same outputs, gradients, batch-norm statistics and random stream
// as the plain forward pass.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>
#include <string>

#include "worker/model/activation_checkpoint.hpp"

namespace {

using smartcash::model::run_block;

torch::nn::Sequential make_stage() {
    torch::manual_seed(3);
    return torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 8, 3).padding(1)),
                                 torch::nn::BatchNorm2d(8), torch::nn::SiLU(),
                                 torch::nn::Dropout(0.3),
                                 torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 4, 1)));
}

/// Autograd nodes reachable from `t` whose name contains `what`.
int count_nodes(const torch::Tensor& t, const std::string& what) {
    std::set<torch::autograd::Node*> seen;
    std::vector<torch::autograd::Node*> todo{t.grad_fn().get()};
    int count = 0;
    while (!todo.empty()) {
        auto* node = todo.back();
        todo.pop_back();
        if (!node || !seen.insert(node).second) continue;
        if (node->name().find(what) != std::string::npos) ++count;
        for (const auto& edge : node->next_edges()) todo.push_back(edge.function.get());
    }
    return count;
}

struct Run {
    torch::Tensor out, input_grad, rng_after;
    std::vector<torch::Tensor> grads, buffers;
    int checkpoints = 0;
};

Run run(bool checkpointing) {
    auto stage = make_stage();
    stage->train();
    torch::manual_seed(11);
    auto x = torch::randn({2, 4, 6, 6}).requires_grad_(true);
    torch::manual_seed(12);
    Run r;
    r.out = run_block(stage, x, checkpointing);
    r.checkpoints = count_nodes(r.out, "CheckpointFunction");
    r.out.square().sum().backward();
    r.rng_after = at::detail::getDefaultCPUGenerator().get_state();
    r.input_grad = x.grad();
    for (const auto& p : stage->parameters()) r.grads.push_back(p.grad());
    for (const auto& b : stage->buffers()) r.buffers.push_back(b.clone());
    return r;
}

TEST(CheckpointBlocks, OneCheckpointPerBlockWithTheSameResults) {
    const auto plain = run(false);
    const auto blocks = run(true);
    EXPECT_EQ(plain.checkpoints, 0);
    EXPECT_EQ(blocks.checkpoints, 5);
    EXPECT_TRUE(torch::allclose(plain.out, blocks.out));
    EXPECT_TRUE(torch::allclose(plain.input_grad, blocks.input_grad, 1e-5, 1e-6));
    ASSERT_EQ(plain.grads.size(), blocks.grads.size());
    for (std::size_t i = 0; i < plain.grads.size(); ++i)
        EXPECT_TRUE(torch::allclose(plain.grads[i], blocks.grads[i], 1e-5, 1e-6))
            << "parameter " << i;
    ASSERT_EQ(plain.buffers.size(), blocks.buffers.size());
    for (std::size_t i = 0; i < plain.buffers.size(); ++i)
        EXPECT_TRUE(torch::equal(plain.buffers[i], blocks.buffers[i])) << "buffer " << i;
    EXPECT_TRUE(torch::equal(plain.rng_after, blocks.rng_after));
}

TEST(CheckpointBlocks, PlainCallWithoutGrad) {
    auto stage = make_stage();
    stage->train();
    torch::NoGradGuard no_grad;
    auto out = run_block(stage, torch::randn({1, 4, 6, 6}), true);
    EXPECT_FALSE(out.requires_grad());
}

}  // namespace
