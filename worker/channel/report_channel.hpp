// The worker's end of the supervisor channel: JSON lines out (report fd), commands in (command
// fd). Training never blocks on it: sends are queued for a writer thread, commands are polled.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "common/commands.hpp"
#include "common/protocol.hpp"
#include "common/reports.hpp"

namespace smartcash::train {

class ReportChannel {
  public:
    /// Takes ownership of the fds; either may be -1 (that direction is then off).
    ReportChannel(int report_fd, int command_fd);
    ~ReportChannel();
    ReportChannel(const ReportChannel&) = delete;
    ReportChannel& operator=(const ReportChannel&) = delete;

    /// Channel from --report-fd/--command-fd (when >= 0) or SMARTCASH_REPORT_FD /
    /// SMARTCASH_COMMAND_FD; nullptr when neither names a report fd.
    static std::unique_ptr<ReportChannel> open(int report_fd, int command_fd);

    /// Queues a report. Never blocks: when the queue is full, progress reports are dropped;
    /// other reports are always kept.
    void send(const protocol::WorkerReport& report);

    /// Waits until the queue is written out, at most `timeout` (used before exiting).
    void flush(std::chrono::milliseconds timeout);

    /// The next command from the supervisor, if any (lines it cannot read are logged and
    /// skipped). Never blocks. Once the command pipe is at end of file (the supervisor is gone)
    /// and its last commands are returned, asks for a checkpoint and stop ("supervisor gone").
    std::optional<protocol::WorkerCommand> poll_command();

  private:
    void writer_loop();

    int m_report_fd;
    int m_command_fd;
    std::mutex m_mutex;
    std::condition_variable m_wake;
    std::condition_variable m_drained;
    std::deque<std::string> m_queue;
    bool m_writing = false;
    bool m_closing = false;
    bool m_broken = false;
    bool m_command_eof = false;  ///< the command pipe read end of file: the supervisor is gone
    protocol::LineSplitter m_commands;
    std::thread m_writer;
};

}  // namespace smartcash::train
