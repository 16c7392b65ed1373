// Journal events as lines for people: what `smartcashd run` prints on its terminal.
//
// The journal (events.jsonl) keeps the full JSON; these lines say the same in words, and make the
// moments that matter (tier moves, memory limits, the job's end) stand out from routine ones.
#pragma once

#include <string>

#include "common/journal_events.hpp"
#include "common/reports.hpp"

namespace smartcash::daemon {

/// How much a line matters, for emphasis on a terminal.
enum class EventWeight { routine, notable, alarm };

struct EventText {
    std::string text;  ///< one line, no trailing newline; empty: not worth a line
    EventWeight weight = EventWeight::routine;
};

/// The line for one journal entry.
EventText describe_event(const protocol::JournalEvent& entry);

/// Whether an entry is detail a person watching the job sees only when asking for it (-v): the
/// periodic checkpoints (every N steps and at each epoch's end), and the epoch ends (each evaluated
/// epoch has its own line).
bool is_detail(const protocol::JournalEvent& entry);

/// A periodic progress line from the worker's `progress` report.
std::string describe_progress(const protocol::Progress& report, const std::string& tier);

}  // namespace smartcash::daemon
