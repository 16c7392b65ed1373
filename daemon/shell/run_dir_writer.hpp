// What the supervisor writes into the run directory while it runs: journal lines, in order, and
// state.json. A write that fails (full disk, I/O error) loses nothing: the lines wait in memory
// (at most 100000; older ones are dropped and counted), state.json is written again, and both
// are retried every second until the disk takes them. The supervisor goes on deciding from the
// state in memory meanwhile, and `status` shows the failure (protocol::Persistence).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <deque>
#include <functional>
#include <string>

#include "common/control.hpp"
#include "daemon/rundir/run_files.hpp"
#include "daemon/shell/event_text.hpp"

namespace smartcash::daemon {

class RunDirWriter {
  public:
    /// `save_state` writes state.json (throws on failure); `log` tells a person; `now` is the
    /// supervisor's clock in seconds.
    RunDirWriter(boost::asio::io_context& io, const std::string& run_dir,
                 std::function<void()> save_state,
                 std::function<void(const std::string&, EventWeight)> log,
                 std::function<double()> now);

    /// Queues a journal line (Journal::line) and writes what waits.
    void journal(const std::string& line);
    /// Marks state.json out of date and writes what waits.
    void save_state();
    /// Writes what waits: journal lines first, in order, then state.json.
    void flush();
    /// The last write error, "" while everything is on disk.
    const std::string& error() const { return m_error; }
    /// What `status` shows about it.
    protocol::Persistence view() const;
    void close();

  private:
    Journal m_journal;
    boost::asio::steady_timer m_retry;
    std::function<void()> m_save_state;
    std::function<void(const std::string&, EventWeight)> m_log;
    std::function<double()> m_now;
    std::deque<std::string> m_unwritten;
    std::size_t m_dropped = 0;
    bool m_state_unsaved = false;
    std::string m_error;
    double m_failing_since = 0;
    bool m_retry_armed = false;
};

}  // namespace smartcash::daemon
