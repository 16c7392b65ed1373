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

#include "common/protocol.hpp"

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

    /// Queues a message ("v" is added). Never blocks: when the queue is full, progress messages
    /// are dropped; other messages are always kept.
    void send(protocol::Json message);

    /// Waits until the queue is written out, at most `timeout` (used before exiting).
    void flush(std::chrono::milliseconds timeout);

    /// The next complete command line from the supervisor, if any. Never blocks.
    std::optional<protocol::Json> poll_command();

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
    protocol::LineSplitter m_commands;
    std::thread m_writer;
};

}  // namespace smartcash::train
