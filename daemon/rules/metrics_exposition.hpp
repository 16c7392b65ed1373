// `metrics` (and the /metrics a scraper reads): the job as Prometheus' text exposition format,
// version 0.0.4. Pure: the status and the counters in, the text out.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/control.hpp"
#include "common/journal_events.hpp"

namespace smartcash::daemon {

/// What the journal has counted since this supervisor started (counters restart with it, as
/// Prometheus counters do).
struct MetricsCounters {
    std::map<std::string, std::uint64_t> exits_by_class;  ///< worker ends by exit class
    std::uint64_t tier_moves = 0;
    /// Counts one journal entry as it is written.
    void observe(const protocol::JournalEvent& event);
};

/// The exposition: each family's HELP and TYPE once before its samples, names prefixed
/// `smartcash_`, label values escaped, a trailing newline. Figures not known yet are left out.
std::string metrics_exposition(const protocol::StatusView& status, const MetricsCounters& counters);

/// A label value with backslash, double quote and newline escaped as the format asks.
std::string escape_label_value(const std::string& value);

/// A sample value as Prometheus reads it: integers exactly, others with 17 significant digits,
/// NaN, +Inf and -Inf by those names.
std::string format_sample_value(double value);

}  // namespace smartcash::daemon
