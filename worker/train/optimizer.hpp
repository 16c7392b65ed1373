// AdamW over per-role parameter groups, and the learning-rate schedule of the two phases.
#pragma once

#include <torch/torch.h>

#include <array>
#include <memory>

#include "common/config.hpp"
#include "worker/model/detector.hpp"

namespace smartcash::train {

/// Parameter groups, in this order in the optimizer: backbone, neck, head, each split into
/// weights that decay (conv/linear kernels) and those that do not (biases, norm scales).
enum class Role { backbone = 0, neck = 1, head = 2 };
inline constexpr int group_count = 6;

/// Builds AdamW with the six groups. Learning rates are set per step by apply_learning_rates().
std::unique_ptr<torch::optim::AdamW> make_optimizer(model::DetectorImpl& model,
                                                    const TrainingConfig& config);

/// Multiplier of the phase's base rate at `step_in_phase` of `phase_steps`: linear warmup, then a
/// cosine decay to min_lr_ratio.
double schedule_factor(const TrainingConfig& config, std::int64_t step_in_phase,
                       std::int64_t phase_steps);

/// Sets each group's rate for the given phase (1 or 2) and position; returns the head rate.
double apply_learning_rates(torch::optim::AdamW& optimizer, const TrainingConfig& config, int phase,
                            std::int64_t step_in_phase, std::int64_t phase_steps);

/// Freezes (phase 1) or unfreezes (phase 2) the backbone's parameters.
void set_backbone_trainable(model::DetectorImpl& model, bool trainable);

}  // namespace smartcash::train
