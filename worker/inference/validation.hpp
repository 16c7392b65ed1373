// Validation: run the detector over a split and score it (mAP@0.5, mAP@0.5:0.95, P, R).
#pragma once

#include <torch/torch.h>

#include <functional>

#include "common/config.hpp"
#include "worker/data/dataset.hpp"
#include "worker/eval/metrics.hpp"
#include "worker/model/detector.hpp"

namespace smartcash::train {

/// The detection-layer groups of the SmartCash classes, for per-layer metrics.
std::vector<eval::LayerGroup> layer_groups();

/// Evaluates `model` on `split` in batches of `batch` images (no augmentation, no grad, eval
/// mode; the caller restores train mode). `on_batch(done, total)` is called after each batch.
eval::EvalResult evaluate_split(model::DetectorImpl& model, const data::Split& split,
                                const std::vector<std::string>& class_names, const Config& config,
                                const torch::Device& device, int batch,
                                const std::function<void(std::size_t, std::size_t)>& on_batch = {});

}  // namespace smartcash::train
