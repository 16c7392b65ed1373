#include "worker/train/early_stopping.hpp"

#include <fmt/core.h>

namespace smartcash::train {

EpochVerdict close_epoch(TrainProgress& progress, int& phase2_start, int phase2_epochs,
                         std::optional<double> map50, const EarlyStopConfig& rules) {
    EpochVerdict verdict;
    const int epoch = progress.epoch;
    const int phase = epoch < phase2_start ? 1 : 2;
    if (map50) {
        if (*map50 > progress.best_map50 + rules.min_delta) {
            progress.best_map50 = *map50;
            progress.best_epoch = epoch;
            progress.stale_epochs = 0;
            verdict.improved = true;
        } else {
            ++progress.stale_epochs;
        }
    }
    // In phase 1 early stopping moves on to phase 2; in phase 2 it ends the run.
    const bool stop_phase = rules.patience > 0 && progress.stale_epochs >= rules.patience;
    progress.epoch = epoch + 1;
    progress.step_in_epoch = 0;
    if (stop_phase && phase == 1 && progress.epoch < phase2_start) {
        verdict.message = fmt::format("no mAP@0.5 improvement for {} epochs: moving on to phase 2",
                                      rules.patience);
        phase2_start = progress.epoch;
        progress.phase_cut = true;
        verdict.phase_cut = true;
    } else if (stop_phase && phase == 2) {
        verdict.message =
            fmt::format("no mAP@0.5 improvement for {} epochs: stopping early", rules.patience);
        progress.finished = true;
        progress.finish_reason = "early_stop";
    }
    if (progress.epoch >= phase2_start + phase2_epochs && !progress.finished) {
        progress.finished = true;
        progress.finish_reason = "finished";
    }
    // Patience counts within a phase: phase 2 starts with a clean count.
    if (phase == 1 && progress.epoch >= phase2_start) progress.stale_epochs = 0;
    return verdict;
}

}  // namespace smartcash::train
