#include "worker/channel/report_channel.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>

#include "common/exit_codes.hpp"
#include "worker/channel/stop_request.hpp"

namespace smartcash::train {

namespace {
constexpr std::size_t max_queue = 256;

int env_fd(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) return -1;
    char* end = nullptr;
    long fd = std::strtol(v, &end, 10);
    if (*end != '\0' || fd < 0) return -1;
    return static_cast<int>(fd);
}
}  // namespace

std::unique_ptr<ReportChannel> ReportChannel::open(int report_fd, int command_fd) {
    if (report_fd < 0) report_fd = env_fd(protocol::report_fd_env);
    if (command_fd < 0) command_fd = env_fd(protocol::command_fd_env);
    if (report_fd < 0 && command_fd < 0) return nullptr;
    return std::make_unique<ReportChannel>(report_fd, command_fd);
}

ReportChannel::ReportChannel(int report_fd, int command_fd)
    : m_report_fd(report_fd), m_command_fd(command_fd) {
    // A vanished supervisor must not kill us with SIGPIPE: we notice EPIPE and carry on.
    std::signal(SIGPIPE, SIG_IGN);
    for (int fd : {m_report_fd, m_command_fd}) {
        if (fd >= 0) ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC);
    }
    if (m_command_fd >= 0)
        ::fcntl(m_command_fd, F_SETFL, ::fcntl(m_command_fd, F_GETFL) | O_NONBLOCK);
    if (m_report_fd >= 0) m_writer = std::thread([this] { writer_loop(); });
}

ReportChannel::~ReportChannel() {
    flush(std::chrono::milliseconds(2000));
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_closing = true;
    }
    m_wake.notify_all();
    if (m_writer.joinable()) {
        // A writer stuck on a full pipe would block the join; closing the fd breaks the write.
        if (m_report_fd >= 0) ::close(m_report_fd);
        m_writer.join();
    } else if (m_report_fd >= 0) {
        ::close(m_report_fd);
    }
    if (m_command_fd >= 0) ::close(m_command_fd);
}

void ReportChannel::send(const protocol::WorkerReport& report) {
    if (m_report_fd < 0) return;
    std::string line = protocol::encode(protocol::to_json(report));
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        if (m_broken) return;
        if (m_queue.size() >= max_queue && std::holds_alternative<protocol::Progress>(report))
            return;
        m_queue.push_back(std::move(line));
    }
    m_wake.notify_one();
}

void ReportChannel::flush(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(m_mutex);
    m_drained.wait_for(lock, timeout,
                       [this] { return m_broken || (m_queue.empty() && !m_writing); });
}

void ReportChannel::writer_loop() {
    std::unique_lock<std::mutex> lock(m_mutex);
    while (true) {
        m_wake.wait(lock, [this] { return m_closing || !m_queue.empty(); });
        if (m_queue.empty()) {
            if (m_closing) return;
            continue;
        }
        std::string line = std::move(m_queue.front());
        m_queue.pop_front();
        m_writing = true;
        lock.unlock();
        std::size_t off = 0;
        bool failed = false;
        while (off < line.size()) {
            ssize_t n = ::write(m_report_fd, line.data() + off, line.size() - off);
            if (n < 0) {
                if (errno == EINTR) continue;
                // The supervisor is gone (where no parent-death signal exists this is how we
                // learn it): stop after a checkpoint rather than train on unobserved.
                if (errno == EPIPE) request_stop("supervisor gone", exit_code::requested_stop);
                failed = true;
                break;
            }
            off += static_cast<std::size_t>(n);
        }
        lock.lock();
        m_writing = false;
        if (failed) {
            m_broken = true;
            m_queue.clear();
        }
        if (m_queue.empty()) m_drained.notify_all();
        if (m_broken) {
            m_drained.notify_all();
            return;
        }
    }
}

std::optional<protocol::WorkerCommand> ReportChannel::poll_command() {
    if (m_command_fd < 0) return std::nullopt;
    char buf[4096];
    while (true) {
        ssize_t n = ::read(m_command_fd, buf, sizeof buf);
        if (n > 0) {
            m_commands.feed(buf, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        // End of file: every copy of the write end is closed, so the supervisor is gone (on
        // macOS, which has no parent-death signal, this is how the worker learns it).
        if (n == 0) m_command_eof = true;
        break;  // EAGAIN, EOF or error: nothing more now
    }
    while (auto line = m_commands.next()) {
        std::string error;
        auto message = protocol::decode(*line, &error, protocol::command_key);
        if (auto command = message ? protocol::command_from_json(*message, &error) : std::nullopt)
            return command;
        std::cerr << "ignoring a command from the supervisor: " << error << std::endl;
    }
    // The supervisor's last commands come first (a checkpoint_and_stop keeps its reason); then
    // the same stop as a failed report write: a checkpoint, rather than training unobserved.
    if (m_command_eof) request_stop("supervisor gone", exit_code::requested_stop);
    return std::nullopt;
}

}  // namespace smartcash::train
