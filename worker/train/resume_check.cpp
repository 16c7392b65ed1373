#include "worker/train/resume_check.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <vector>

namespace smartcash::train {

namespace {

std::string joined(const std::vector<std::string>& items, const char* separator) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
    return out;
}

}  // namespace

void check_resume_compatible(const LoadedCheckpoint& checkpoint, const Config& config,
                             const data::Dataset& dataset, const data::DatasetIdentity& identity,
                             const std::string& dataset_path) {
    const Config saved =
        parse_config(checkpoint.meta.config_yaml, checkpoint.path + " (saved config)");
    const auto diffs = resume_incompatibilities(saved, config);
    if (!diffs.empty())
        throw ConfigError(config.source_path, 0, 0, diffs.front(),
                          fmt::format("cannot resume {}: {} changed since the checkpoint was "
                                      "written (start a new run directory, or restore the old "
                                      "value)",
                                      checkpoint.path, joined(diffs, ", ")));
    // The data order and the position in it index the train split. A checkpoint of an older
    // worker has no dataset identity; its data order still tells the train split's size.
    std::vector<std::string> changes;
    if (checkpoint.meta.dataset)
        changes = data::dataset_changes(*checkpoint.meta.dataset, identity);
    else if (checkpoint.meta.progress.order.size() != dataset.train.size())
        changes.push_back(fmt::format("the train split has {} images, the checkpoint's had {}",
                                      dataset.train.size(), checkpoint.meta.progress.order.size()));
    if (!changes.empty())
        throw ConfigError(config.source_path, 0, 0, "data.dataset",
                          fmt::format("cannot resume {}: the dataset {} changed since the "
                                      "checkpoint was written: {} (start a new run directory, or "
                                      "restore the dataset)",
                                      checkpoint.path, dataset_path, joined(changes, "; ")));
}

int phase2_start_after_cut(const TrainProgress& progress) {
    int last_phase1 = -1;
    for (const auto& m : progress.metrics)
        if (m.value("phase", 1) == 1) last_phase1 = std::max(last_phase1, m.value("epoch", -1));
    return last_phase1 + 1;
}

}  // namespace smartcash::train
