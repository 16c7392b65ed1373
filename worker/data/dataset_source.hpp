// Where a run's dataset is: the config's `data.dataset` path as it is, or, for the embedded
// synthetic dataset ("synthetic"), the run directory's data/ folder, generated there on first use.
#pragma once

#include <functional>
#include <string>

#include "common/config.hpp"

namespace smartcash::data {

/// The dataset path `config` names for a run in `run_dir`; generates the synthetic dataset when
/// the config asks for it and the folder is missing or incomplete (`log` is told first).
std::string prepare_dataset(const Config& config, const std::string& run_dir,
                            const std::function<void(const std::string&)>& log = {});

}  // namespace smartcash::data
