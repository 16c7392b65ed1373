// Activation checkpointing: trade compute for memory by recomputing a block's activations in the
// backward pass instead of keeping them from the forward pass. The lowest memory tier turns it on.
//
// Granularity: a stage made of a sequence of blocks (torch::nn::Sequential) is checkpointed block
// by block, so only the inputs of the blocks stay resident between the forward and the backward
// pass, and the backward pass recomputes one block at a time. Checkpointing the whole stage at
// once would keep every activation of the stage resident while it is recomputed, and the largest
// stage then set the peak.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>

namespace smartcash::model {

/// A block's forward computation on one input tensor.
using BlockForward = std::function<torch::Tensor(const torch::Tensor&)>;

/// Runs `forward(input)` and returns its result.
///
/// When `module` is in training mode, autograd is recording and `input` requires grad, the
/// forward runs without recording a graph; only `input` is kept. The backward pass re-runs
/// `forward` with the random-number generators (CPU, and the input's accelerator where there is
/// one) rewound to their state at the original call, so stochastic depth draws the same masks,
/// then back-propagates through the recomputed graph. Generator states are put back afterwards,
/// and batch-norm running statistics of `module` are not updated a second time.
///
/// Otherwise (evaluation, no-grad, or an input that does not require grad) it is a plain call.
/// `forward` must compute with the parameters of `module` only.
torch::Tensor checkpointed_forward(const std::shared_ptr<torch::nn::Module>& module,
                                   BlockForward forward, const torch::Tensor& input);

/// `block->forward(x)`, through checkpointed_forward() when `checkpointing` is on. `block` is a
/// module holder (e.g. torch::nn::Sequential, C3) whose forward takes one tensor.
template <typename Holder>
torch::Tensor run_block(Holder block, const torch::Tensor& x, bool checkpointing) {
    if (!checkpointing) {
        return block->forward(x);
    }
    auto module = block.ptr();
    return checkpointed_forward(
        module, [module](const torch::Tensor& input) { return module->forward(input); }, x);
}

/// A stage of blocks: each block of `stage` through checkpointed_forward() in turn when
/// `checkpointing` is on (the same outputs and gradients as the plain call).
inline torch::Tensor run_block(torch::nn::Sequential stage, const torch::Tensor& x,
                               bool checkpointing) {
    if (!checkpointing) {
        return stage->forward(x);
    }
    const std::shared_ptr<torch::nn::SequentialImpl> blocks = stage.ptr();
    torch::Tensor y = x;
    for (std::size_t i = 0; i < blocks->size(); ++i) {
        y = checkpointed_forward(
            blocks->ptr(i),
            [blocks, i](const torch::Tensor& input) {
                return blocks->begin()[static_cast<std::ptrdiff_t>(i)].forward<torch::Tensor>(
                    input);
            },
            y);
    }
    return y;
}

}  // namespace smartcash::model
