// The supervisor's shell: turns the outside world (worker reports and exits, memory readings,
// timers, signals, control requests) into events for decide() and performs the actions it
// returns. All on one Boost.Asio io_context; no threads.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/config.hpp"
#include "daemon/rules/decision.hpp"
#include "daemon/shell/world_options.hpp"

namespace smartcash::daemon {

/// smartcashd's exit codes (docs/exit-codes.md).
namespace supervisor_exit {
inline constexpr int done = 0;
inline constexpr int failed = 1;
inline constexpr int usage = 2;
inline constexpr int stopped = 3;  ///< stopped or paused on request before the job finished
}  // namespace supervisor_exit

struct SupervisorOptions {
    std::string run_dir;
    std::string worker_path;
    bool log_to_stderr = true;
    /// --follow: on a terminal, a live progress block under the log lines; elsewhere, the
    /// worker's own log lines (logs/worker-N.log) copied to stderr as they are written.
    bool follow_worker_log = false;
    /// Also show the periodic checkpoints and epoch ends (and, with a live block, the worker's
    /// log).
    bool verbose = false;
    /// Seconds between progress lines on stderr (0: none). Not used while following the log.
    double progress_interval = 30;
    /// The ranks of a data-parallel job (docs/distributed.md); one rank by default.
    WorldOptions world;
    /// Called once the control socket is listening (smartcashd start reports readiness here).
    std::function<void()> on_ready;
    /// Called when startup fails before the loop runs, with the message.
    std::function<void(const std::string&)> on_startup_error;
};

class Supervisor {
  public:
    Supervisor(Config config, SupervisorOptions options);
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    /// Runs the job until it is done, failed or stopped; returns a supervisor_exit code.
    int run();

  private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace smartcash::daemon
