// Whether a checkpoint may be resumed with this config and this dataset: the model, the effective
// batch and the data must be those it was written with; the tier may differ (that is the point of
// a tier move). A mismatch is a ConfigError that names the keys or the data that changed.
#pragma once

#include <string>

#include "common/config.hpp"
#include "worker/checkpoint/checkpoint.hpp"
#include "worker/data/dataset.hpp"

namespace smartcash::train {

/// Throws ConfigError (at the config's file, the first key that changed) when `checkpoint` cannot
/// be resumed under `config` with the dataset at `dataset_path`.
void check_resume_compatible(const LoadedCheckpoint& checkpoint, const Config& config,
                             const data::Dataset& dataset, const data::DatasetIdentity& identity,
                             const std::string& dataset_path);

/// The epoch phase 2 begins with in a run whose phase 1 was cut short (progress.phase_cut): the
/// one after the last epoch its metrics record for phase 1.
int phase2_start_after_cut(const TrainProgress& progress);

}  // namespace smartcash::train
