// The training loop: two phases, gradient accumulation to the fixed effective batch, validation,
// early stopping, exact checkpoints, reports to the supervisor, and the worker's fault contract
// (requested stops, in-process OOM, I/O errors, steps with a non-finite loss).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/config.hpp"
#include "worker/data/sample.hpp"
#include "worker/model/detector.hpp"
#include "worker/train/loss.hpp"

namespace smartcash::train {

class ReportChannel;

struct TrainOptions {
    std::string config_path;
    std::string run_dir;   ///< default: runs/<config stem>
    std::string tier;      ///< default: the first tier whose device exists
    int report_fd = -1;    ///< default: SMARTCASH_REPORT_FD
    int command_fd = -1;   ///< default: SMARTCASH_COMMAND_FD
    std::string pretrained;  ///< overrides model.pretrained when set
    int pretrained_strict = -1;  ///< 0/1 overrides model.pretrained_strict; -1: the config's
};

/// Runs (or resumes) training; returns a worker exit code (common/exit_codes.hpp).
int run_training(const TrainOptions& options);

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
/// dropped and the result says `skipped` (the caller decides what a skipped step means for the run).
StepResult train_step(model::DetectorImpl& model, torch::optim::AdamW& optimizer, const YoloLoss& loss,
                      const std::vector<data::Sample>& samples, int micro_batch, int img_size,
                      double grad_clip, const torch::Device& device,
                      const std::function<bool()>& between_micro = {});

/// True when an exception's text is one of the allocators' out-of-memory messages.
bool is_out_of_memory(const std::string& message);

/// True when an exception is an allocation failure: std::bad_alloc, c10::OutOfMemoryError
/// (CUDA), or any exception whose text is an out-of-memory message (MPS, the CPU allocator).
bool is_out_of_memory(const std::exception& e);

}  // namespace smartcash::train
