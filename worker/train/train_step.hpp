// One optimizer step: gradient accumulation over micro-batches up to the fixed effective batch,
// gradient clipping, the non-finite guard, and the update. The math of training lives here; the
// loop around it (worker/train/trainer.hpp) decides which images and what a step's end means.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "worker/data/sample.hpp"
#include "worker/model/detector.hpp"
#include "worker/train/loss.hpp"

namespace smartcash::train {

struct StepResult {
    bool completed = false;  ///< false: stopped between micro-batches, gradients dropped
    double loss = 0, box = 0, obj = 0, cls = 0;  ///< per-image means over the step
    double grad_norm = 0;  ///< global L2 norm of the accumulated gradient (before clipping)
    int micro_batches = 0;
    /// The loss or the gradient norm was not finite: no update was made, gradients dropped.
    bool skipped = false;
};

/// One optimizer step over `samples` (effective batch), split into micro-batches of
/// `micro_batch`. Each micro-batch's loss is its per-image sum divided by the effective batch,
/// so the accumulated gradient does not depend on the split. `between_micro` is called after
/// each micro-batch except the last; returning false abandons the step (gradients dropped).
/// A step whose loss or global gradient norm is not finite makes no update: its gradients are
/// dropped and the result says `skipped` (the caller decides what a skipped step means for the
/// run).
StepResult train_step(model::DetectorImpl& model, torch::optim::AdamW& optimizer,
                      const YoloLoss& loss, const std::vector<data::Sample>& samples,
                      int micro_batch, int img_size, double grad_clip, const torch::Device& device,
                      const std::function<bool()>& between_micro = {});

}  // namespace smartcash::train
