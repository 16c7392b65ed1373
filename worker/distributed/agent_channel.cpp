#include "worker/distributed/agent_channel.hpp"

#include <fcntl.h>
#include <fmt/core.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace smartcash::dist {

namespace world = protocol::world;

namespace {

int env_fd(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) return -1;
    char* end = nullptr;
    const long fd = std::strtol(v, &end, 10);
    if (*end != '\0' || fd < 0) return -1;
    return static_cast<int>(fd);
}

}  // namespace

AgentChannel::AgentChannel(int report_fd, int command_fd)
    : m_report_fd(report_fd >= 0 ? report_fd : env_fd(protocol::report_fd_env)),
      m_command_fd(command_fd >= 0 ? command_fd : env_fd(protocol::command_fd_env)) {
    if (m_report_fd < 0) m_report_fd = STDOUT_FILENO;
    if (m_command_fd < 0) m_command_fd = STDIN_FILENO;
    for (int fd : {m_report_fd, m_command_fd})
        ::fcntl(fd, F_SETFD, ::fcntl(fd, F_GETFD) | FD_CLOEXEC);
    ::fcntl(m_command_fd, F_SETFL, ::fcntl(m_command_fd, F_GETFL) | O_NONBLOCK);
}

void AgentChannel::send(const world::AgentMessage& message) {
    if (m_gone) return;
    const std::string line = protocol::encode(world::to_json(message));
    std::size_t off = 0;
    while (off < line.size()) {
        const ssize_t n = ::write(m_report_fd, line.data() + off, line.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                pollfd p{m_report_fd, POLLOUT, 0};
                ::poll(&p, 1, 100);
                continue;
            }
            m_gone = true;  // EPIPE: the supervisor is gone
            return;
        }
        off += static_cast<std::size_t>(n);
    }
}

bool AgentChannel::read(int timeout_ms,
                        const std::function<void(const world::AgentCommand&)>& on_command,
                        const std::function<void(const std::string&)>& log) {
    auto handle_lines = [&] {
        if (m_lines.take_overflow())
            log(fmt::format("ignoring a command line longer than {} bytes",
                            protocol::max_line_bytes));
        while (auto line = m_lines.next()) {
            if (line->empty()) continue;
            std::string error;
            auto message = protocol::decode(*line, &error, protocol::command_key);
            auto command = message ? world::agent_command_from_json(*message, &error)
                                   : std::optional<world::AgentCommand>();
            if (!command) {
                log("ignoring a command from the supervisor: " + error);
                continue;
            }
            on_command(*command);
        }
    };
    pollfd p{m_command_fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, timeout_ms);
    if (ready < 0 && errno != EINTR) return false;
    if (ready <= 0) return true;
    char buf[4096];
    while (true) {
        const ssize_t n = ::read(m_command_fd, buf, sizeof buf);
        if (n > 0) {
            m_lines.feed(buf, static_cast<std::size_t>(n));
            if (static_cast<std::size_t>(n) < sizeof buf) break;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        handle_lines();
        return false;  // end of file (or an error): the supervisor left
    }
    handle_lines();
    return true;
}

}  // namespace smartcash::dist
