// What smartcashd writes on its terminal (stderr): its own log lines with emphasis for the ones
// that matter, the worker's log copied as it grows (--follow off a terminal, or with -v), the
// live progress block (--follow on a terminal, common/progress_block.hpp) under the log lines,
// and the summary at the job's end.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "common/control.hpp"
#include "common/live_block.hpp"
#include "daemon/rules/decision.hpp"
#include "daemon/shell/event_text.hpp"

namespace smartcash::daemon {

class Console {
  public:
    /// `enabled` false: say nothing. `follow`: on a terminal, draw the live progress block (and
    /// copy the worker's log lines only when `verbose`); elsewhere copy the worker's log lines.
    Console(bool enabled, bool follow, bool verbose = false);

    /// Whether the live block is drawn (--follow on a terminal).
    bool live() const { return m_block != nullptr; }
    /// Redraws the live block with `status` (nothing when not live).
    void show(const protocol::StatusView& status);

    /// One line, stamped with the time (UTC, like the journal).
    void log(const std::string& line, EventWeight weight = EventWeight::routine) const;

    /// Starts copying the worker log at `path` (the previous one is finished first).
    void follow(const std::string& path);
    /// Copies what the followed log gained since the last call.
    void poll_followed();
    /// Copies the rest of the followed log, including a last line without its newline, and stops.
    void end_follow();

    /// The job's end: status, tier, step, launches, mAP, per-tier figures, where to look next.
    void summary(const Finish& end, const SupervisorState& state, const Config& config,
                 const std::string& run_dir) const;

  private:
    void write(const std::string& text) const;

    bool m_enabled;
    bool m_follow;
    bool m_terminal;
    std::unique_ptr<LiveBlock> m_block;
    std::string m_path;  // the worker log being copied
    std::size_t m_offset = 0;
    std::string m_pending;  // a partial last line
};

}  // namespace smartcash::daemon
