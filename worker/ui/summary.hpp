#pragma once
// What the trainer prints after each epoch and what `eval` prints.

#include <cstdint>
#include <optional>
#include <string>

#include "worker/eval/metrics.hpp"
#include "worker/ui/table.hpp"

namespace smartcash::ui {

/// One finished epoch. Losses are the epoch's means over its optimizer steps; peak sizes are
/// bytes (0 = not known / not applicable). `validation` is empty when the epoch was not
/// validated.
struct EpochSummary {
    int epoch = 0;
    int epochs = 0;
    int phase = 1;
    double loss = 0.0;
    double loss_box = 0.0;
    double loss_obj = 0.0;
    double loss_cls = 0.0;
    std::optional<eval::EvalResult> validation;
    double seconds = 0.0;
    std::uint64_t peak_rss = 0;
    std::uint64_t peak_device_mem = 0;
    std::string tier;
    bool best = false;  // this epoch set a new best validation mAP@0.5
};

/// The epoch summary: a title line (epoch, phase, training losses), a table of validation mAP@0.5,
/// mAP@0.5:0.95, precision and recall for all classes and for each detection layer (omitted when
/// not validated), and a closing line (time, peak RSS, peak device memory, tier, new best).
std::string format_epoch_summary(const EpochSummary& summary,
                                 TableStyle style = TableStyle::unicode);

/// The full evaluation as a table: one row per class (ground truths, detections, P, R, AP@0.5,
/// AP@0.5:0.95), then one row per layer and one for all classes (means). Undefined numbers
/// (classes without ground truth) show as "-".
std::string format_eval_table(const eval::EvalResult& result,
                              TableStyle style = TableStyle::unicode);

}  // namespace smartcash::ui
