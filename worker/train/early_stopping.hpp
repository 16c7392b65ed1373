// The epoch's end as a rule: whether this validation is the best so far, and whether early
// stopping moves phase 1 on to phase 2 or ends the run (docs/config.md, training.early_stopping).
// A pure function of the progress record, so the rule is tested without a model.
#pragma once

#include <optional>
#include <string>

#include "common/config.hpp"
#include "worker/checkpoint/checkpoint.hpp"

namespace smartcash::train {

struct EpochVerdict {
    bool improved = false;   ///< this epoch's mAP@0.5 is the best so far
    bool phase_cut = false;  ///< phase 1 ended early: phase 2 begins with the next epoch
    std::string message;     ///< a line for the log when early stopping acted, else empty
};

/// Closes epoch `progress.epoch`, evaluated with `map50` (nullopt: not evaluated this epoch).
/// Updates the best score, the stale count, `progress.epoch` (to the next epoch),
/// `progress.step_in_epoch` (0), `progress.phase_cut`, `progress.finished` and
/// `progress.finish_reason` ("finished" after the last epoch, "early_stop"); `phase2_start` moves
/// to the next epoch when phase 1 is cut short.
EpochVerdict close_epoch(TrainProgress& progress, int& phase2_start, int phase2_epochs,
                         std::optional<double> map50, const EarlyStopConfig& rules);

}  // namespace smartcash::train
