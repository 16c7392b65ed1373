// One optimizer step: gradient accumulation over micro-batches up to the fixed effective batch,
// gradient clipping, the non-finite guard, and the update. The math of training lives here; the
// loop around it (worker/train/trainer.hpp) decides which images and what a step's end means.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "worker/data/sample.hpp"
#include "worker/model/detector.hpp"
#include "worker/train/loss.hpp"

namespace smartcash::dist {
class ProcessGroupContext;
}

namespace smartcash::train {

struct StepResult {
    bool completed = false;  ///< false: stopped between micro-batches, gradients dropped
    double loss = 0, box = 0, obj = 0, cls = 0;  ///< per-image means over the step
    double grad_norm = 0;  ///< global L2 norm of the accumulated gradient (before clipping)
    int micro_batches = 0;
    /// The loss or the gradient norm was not finite: no update was made, gradients dropped.
    bool skipped = false;
};

/// This process's part of a step that several ranks share (docs/distributed.md). The default is
/// one process: the whole step.
struct StepShare {
    /// Images of the whole step over all ranks (training.effective_batch); 0: samples.size().
    int global_batch = 0;
    /// Index within the step (over all ranks) of samples[0].
    std::int64_t first_index = 0;
    /// Called before each micro-batch with the step index of its first image: the trainer
    /// reseeds the random generators there, so stochastic depth draws the same masks for an image
    /// however the step is split between ranks (when micro-batch boundaries line up).
    std::function<void(std::int64_t)> before_micro;
    /// The ranks' process group (null: one process). With it, the accumulated gradient and the
    /// loss figures are summed over the ranks before clipping and the update, and the floating
    /// buffers (BatchNorm statistics) are averaged after the update.
    dist::ProcessGroupContext* group = nullptr;
};

/// One optimizer step over `samples` (effective batch), split into micro-batches of
/// `micro_batch`. Each micro-batch's loss is its per-image sum divided by the effective batch,
/// so the accumulated gradient does not depend on the split. `between_micro` is called after
/// each micro-batch except the last; returning false abandons the step (gradients dropped).
/// A step whose loss or global gradient norm is not finite makes no update: its gradients are
/// dropped and the result says `skipped` (the caller decides what a skipped step means for the
/// run). With `share.group`, `samples` is this rank's shard: each micro-batch's loss is divided by
/// the global batch, the ranks' accumulated gradients are summed (which gives the gradient one
/// process would have), and every rank then makes the same decision on the same numbers.
StepResult train_step(model::DetectorImpl& model, torch::optim::AdamW& optimizer,
                      const YoloLoss& loss, const std::vector<data::Sample>& samples,
                      int micro_batch, int img_size, double grad_clip, const torch::Device& device,
                      const std::function<bool()>& between_micro = {}, const StepShare& share = {});

}  // namespace smartcash::train
