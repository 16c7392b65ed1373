#include "ctl/control_client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace smartcash::daemon {

namespace {

class Fd {
  public:
    explicit Fd(int fd) : m_fd(fd) {}
    ~Fd() {
        if (m_fd >= 0) ::close(m_fd);
    }
    int get() const { return m_fd; }

  private:
    int m_fd;
};

#if defined(MSG_NOSIGNAL)
constexpr int send_flags = MSG_NOSIGNAL;
#else
constexpr int send_flags = 0;  // SO_NOSIGPIPE is set on the socket instead
#endif

int connect_to(const std::string& path, std::string* error) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path)) {
        *error = "socket path too long: " + path;
        return -1;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    // Plain socket() + FD_CLOEXEC: SOCK_CLOEXEC does not exist on macOS.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        *error = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
#if defined(SO_NOSIGPIPE)
    // macOS has no MSG_NOSIGNAL: a closed peer must be an error, not a SIGPIPE.
    const int on = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &on, sizeof on);
#endif
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        *error = "cannot connect to " + path + ": " + std::strerror(errno) +
                 (errno == ENOENT || errno == ECONNREFUSED ? " (is the supervisor running?)" : "");
        ::close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

std::optional<std::string> control_exchange_raw(const std::string& socket_path,
                                                const std::string& bytes, std::string* error,
                                                std::chrono::milliseconds timeout) {
    Fd fd(connect_to(socket_path, error));
    if (fd.get() < 0) return std::nullopt;
    std::size_t sent = 0;
    while (sent < bytes.size()) {
        const ssize_t n = ::send(fd.get(), bytes.data() + sent, bytes.size() - sent, send_flags);
        if (n < 0) {
            if (errno == EINTR) continue;
            break;  // the server may close early on an oversized request; read what it said
        }
        sent += static_cast<std::size_t>(n);
    }
    std::string answer;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    while (answer.find('\n') == std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            *error = "no answer from " + socket_path + " in time";
            return std::nullopt;
        }
        pollfd p{fd.get(), POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        const ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        answer.append(buf, static_cast<std::size_t>(n));
    }
    return answer;
}

std::optional<protocol::Json> control_request(const std::string& socket_path,
                                              const protocol::Json& request, std::string* error,
                                              std::chrono::milliseconds timeout) {
    auto raw = control_exchange_raw(socket_path, protocol::encode(request), error, timeout);
    if (!raw) return std::nullopt;
    const auto nl = raw->find('\n');
    if (nl == std::string::npos) {
        *error = "the supervisor closed the connection without answering";
        return std::nullopt;
    }
    protocol::Json answer =
        protocol::Json::parse(raw->substr(0, nl), nullptr, /*allow_exceptions=*/false);
    if (answer.is_discarded() || !answer.is_object()) {
        *error = "malformed answer from the supervisor";
        return std::nullopt;
    }
    return answer;
}

std::optional<ControlStream> ControlStream::open(const std::string& socket_path,
                                                 const protocol::Json& request,
                                                 std::string* error) {
    const int fd = connect_to(socket_path, error);
    if (fd < 0) return std::nullopt;
    ControlStream stream(fd);
    const std::string bytes = protocol::encode(request);
    std::size_t sent = 0;
    while (sent < bytes.size()) {
        const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, send_flags);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            *error = "cannot send to " + socket_path + ": " + std::strerror(errno);
            return std::nullopt;
        }
        sent += static_cast<std::size_t>(n);
    }
    return stream;
}

ControlStream::ControlStream(ControlStream&& other) noexcept
    : m_fd(other.m_fd), m_pending(std::move(other.m_pending)) {
    other.m_fd = -1;
}

ControlStream::~ControlStream() {
    if (m_fd >= 0) ::close(m_fd);
}

ControlStream::Got ControlStream::next(std::string* line, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (auto nl = m_pending.find('\n'); nl != std::string::npos) {
            *line = m_pending.substr(0, nl);
            m_pending.erase(0, nl + 1);
            return Got::line;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return Got::timeout;
        pollfd p{m_fd, POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        char buf[65536];
        const ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return Got::closed;
        m_pending.append(buf, static_cast<std::size_t>(n));
    }
}

}  // namespace smartcash::daemon
