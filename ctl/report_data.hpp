// What `smartcashctl report` draws, read from a run directory's files only (no supervisor needed):
// the journal (events.jsonl) for launches, exits and tier moves, metrics.jsonl for the loss, RSS
// and mAP curves, and the frozen config.yaml for the tiers' memory limits. report.cpp turns this
// into a picture; nothing here knows about SVG.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace smartcash::report {

/// One optimizer step: the last record metrics.jsonl holds for it (a resume redoes the steps
/// after its checkpoint; the later record wins).
struct StepPoint {
    std::int64_t step = 0;
    double loss = 0;
    std::uint64_t rss = 0;
    std::string tier;
};

/// One evaluated epoch (the last record for it).
struct EpochPoint {
    int epoch = 0;
    std::int64_t step = 0;
    double map50 = 0;
    std::optional<double> map50_95;
};

/// A tier move from the journal, placed at the step the new tier resumed from.
struct TierMark {
    std::int64_t step = 0;
    std::string from;
    std::string to;
    std::string reason;
};

/// The steps one tier was in force: a launch's tier from the step it resumed at to the last step
/// it reported (consecutive launches at one tier joined). A tier left before its first step has
/// from == to. Stretches may overlap when a resume redoes steps.
struct TierStretch {
    std::string tier;
    std::int64_t from = 0;
    std::int64_t to = 0;
};

struct ReportData {
    std::string run_dir;
    std::vector<StepPoint> steps;    ///< by step, one per step
    std::vector<EpochPoint> epochs;  ///< evaluated epochs only, by epoch
    std::vector<TierMark> tier_moves;
    std::vector<TierStretch> tier_stretches;           ///< in launch order, from the journal
    std::vector<std::string> tiers_used;               ///< in order of first launch
    std::map<std::string, int> exits_by_class;         ///< "oom" -> 1, "done" -> 1, ...
    std::map<std::string, std::uint64_t> tier_limits;  ///< memory_limit > 0, where known
    int launches = 0;
    std::int64_t total_steps = 0;  ///< from the workers' hello; 0 when unknown
    std::string job_end;           ///< "done", "failed", "stopped" or "" (still running)
    std::string job_end_message;
    std::optional<double> best_map50;
    std::vector<std::string> notes;  ///< what could not be read but did not stop the report

    /// The highest step recorded, or -1.
    std::int64_t steps_done() const { return steps.empty() ? -1 : steps.back().step; }
    /// The last evaluated epoch's mAP@0.5.
    std::optional<double> final_map50() const {
        return epochs.empty() ? std::nullopt : std::optional<double>(epochs.back().map50);
    }
};

/// Reads RUN_DIR/events.jsonl and RUN_DIR/metrics.jsonl (both required) and RUN_DIR/config.yaml
/// (optional: without it the memory limits are unknown). A line that is not JSON or of an unknown
/// kind (a torn last line after a kill) is skipped and counted in `notes`. Throws
/// std::runtime_error naming the file when one cannot be opened.
ReportData read_report_data(const std::string& run_dir);

}  // namespace smartcash::report
