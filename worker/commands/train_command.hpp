// `smartcash-worker train`: picks the tier, takes the run directory's worker lock, connects the
// report channel, runs the Trainer, and turns errors into exit codes and error reports.
#pragma once

#include <string>

#include "common/config.hpp"

namespace smartcash::train {

struct TrainOptions {
    std::string config_path;
    std::string run_dir;         ///< default: runs/<config stem>
    std::string tier;            ///< default: the first tier whose device exists
    int report_fd = -1;          ///< default: SMARTCASH_REPORT_FD
    int command_fd = -1;         ///< default: SMARTCASH_COMMAND_FD
    std::string pretrained;      ///< overrides model.pretrained when set
    int pretrained_strict = -1;  ///< 0/1 overrides model.pretrained_strict; -1: the config's
};

/// Runs (or resumes) training; returns a worker exit code (common/exit_codes.hpp).
int run_training(const TrainOptions& options);

/// The tier a launch trains at: the one named (which must exist and whose device must be usable
/// here), or the first whose device is. Throws ConfigError saying why there is none.
const TierConfig& select_tier(const Config& config, const std::string& name);

}  // namespace smartcash::train
