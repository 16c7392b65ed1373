// One launch of the worker: Boost.Process starts it with the report and command pipes, its log
// file and its environment; this object reaps it itself (SIGCHLD + waitpid on its own pid), so
// nothing runs before the launch has returned and no pid is used once the worker is reaped.
#pragma once

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/protocol.hpp"

namespace smartcash::daemon {

struct LaunchSpec {
    std::string executable;
    std::vector<std::string> args;
    std::map<std::string, std::string>
        env;               ///< added to (or replacing in) the inherited environment
    std::string log_path;  ///< stdout and stderr go here
};

/// How a process ended, decoded from its wait status in one place.
struct ProcessEnd {
    std::optional<int> exit_code;
    std::optional<int> signal;
};

/// Why a launch did not start. `cannot_execute` is set when the program itself cannot be run
/// (missing, not executable, not a program): trying again cannot help.
struct StartError {
    std::string message;
    bool cannot_execute = false;
};

/// A running worker. Callbacks run on the io_context; after the exit callback no other
/// callback of this object runs.
class WorkerProcess : public std::enable_shared_from_this<WorkerProcess> {
  public:
    using ReportHandler = std::function<void(const protocol::Json&)>;
    using LineErrorHandler = std::function<void(const std::string&)>;
    using ExitHandler = std::function<void(const ProcessEnd&)>;

    explicit WorkerProcess(boost::asio::io_context& io);
    ~WorkerProcess();

    /// Starts the process. In the child, before exec: its own process group (terminal signals
    /// go to the supervisor only), PR_SET_PDEATHSIG(SIGTERM) on Linux so that it checkpoints and
    /// stops if the supervisor dies, and every inherited fd but the two channel fds closed on
    /// exec. Returns why when it could not be started (no zombie is left). No callback runs
    /// before start() has returned.
    std::optional<StartError> start(const LaunchSpec& spec, ReportHandler on_report,
                                    LineErrorHandler on_bad_line, ExitHandler on_exit);

    int pid() const { return m_pid; }
    bool exited() const { return m_exited; }
    /// The process has been reaped: its pid may belong to someone else now, so nothing (signals,
    /// memory readings) may use it any more.
    bool reaped() const { return m_end.has_value(); }
    /// Sends a signal to the worker's process group (its helpers too); nothing once reaped.
    void signal(int sig);
    /// Queues one command line on the command pipe; dropped once the worker is gone.
    void send(const protocol::Json& command);

  private:
    void read_reports();
    void write_next();
    void wait_child_signal();
    void try_reap();
    void finish();

    boost::asio::io_context& m_io;
    boost::asio::signal_set m_sigchld;
    boost::asio::posix::stream_descriptor m_report;
    boost::asio::posix::stream_descriptor m_command;
    protocol::LineSplitter m_splitter;
    std::array<char, 8192> m_read_buffer{};
    std::deque<std::string> m_outbox;
    bool m_writing = false;
    boost::asio::steady_timer m_drain_timer;
    int m_pid = 0;
    bool m_exited = false;  ///< the exit handler has run
    bool m_report_eof = false;
    std::optional<ProcessEnd> m_end;  ///< set once the process is reaped
    bool m_closed = false;            ///< finished or destroyed: SIGCHLD waits stop re-arming
    ReportHandler m_on_report;
    LineErrorHandler m_on_bad_line;
    ExitHandler m_on_exit;
};

/// Decodes a waitpid() status.
ProcessEnd decode_wait_status(int status);

}  // namespace smartcash::daemon
