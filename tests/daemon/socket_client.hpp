// A raw client of a Unix stream socket for the control socket's tests: connect, send bytes, read
// one line or see the connection closed, each with a deadline (never a sleep).
#pragma once

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

namespace smartcash::test {

/// A connected client socket (-1 when the connection failed); closed with the object.
class SocketClient {
  public:
    explicit SocketClient(const std::string& path) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        m_fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        if (m_fd >= 0 && ::connect(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            ::close(m_fd);
            m_fd = -1;
        }
    }
    ~SocketClient() { reset(); }
    SocketClient(const SocketClient&) = delete;
    SocketClient& operator=(const SocketClient&) = delete;
    SocketClient(SocketClient&& o) noexcept
        : m_fd(o.m_fd), m_pending(std::move(o.m_pending)), m_eof(o.m_eof) {
        o.m_fd = -1;
    }

    bool ok() const { return m_fd >= 0; }
    int fd() const { return m_fd; }
    void reset() {
        if (m_fd >= 0) ::close(m_fd);
        m_fd = -1;
    }

    /// Sends all of `bytes`; false when the peer closed before taking them all.
    bool send(const std::string& bytes) {
        std::size_t sent = 0;
        while (sent < bytes.size()) {
            const ssize_t n = ::send(m_fd, bytes.data() + sent, bytes.size() - sent, flags());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            sent += static_cast<std::size_t>(n);
        }
        return true;
    }

    /// The next line (without '\n'), or nullopt when the peer closed first or time ran out.
    std::optional<std::string> line(std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (auto nl = m_pending.find('\n'); nl != std::string::npos) {
                std::string l = m_pending.substr(0, nl);
                m_pending.erase(0, nl + 1);
                return l;
            }
            if (!fill(deadline)) return std::nullopt;
        }
    }

    /// Whether the peer closes the connection before `timeout` (what it sent meanwhile is kept).
    bool closed_within(std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (fill(deadline)) {
        }
        return m_eof;
    }

  private:
    static int flags() {
#if defined(MSG_NOSIGNAL)
        return MSG_NOSIGNAL;
#else
        return 0;
#endif
    }

    // Reads what arrives before the deadline; false on EOF, error or timeout.
    bool fill(std::chrono::steady_clock::time_point deadline) {
        for (;;) {
            if (m_fd < 0) return false;
            // Polls at least once, so a deadline already reached still takes what has arrived.
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            pollfd p{m_fd, POLLIN, 0};
            const int r = ::poll(&p, 1, static_cast<int>(std::max<long long>(0, left.count())));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                if (std::chrono::steady_clock::now() >= deadline) return false;
                continue;
            }
            char buf[65536];
            const ssize_t n = ::recv(m_fd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                m_eof = true;
                return false;
            }
            m_pending.append(buf, static_cast<std::size_t>(n));
            return true;
        }
    }

    int m_fd = -1;
    std::string m_pending;
    bool m_eof = false;
};

}  // namespace smartcash::test
