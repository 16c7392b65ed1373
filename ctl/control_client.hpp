// The client side of control.sock, for smartcashctl and the tests: one request, one answer, or
// (watch) one request and a stream of answers.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "common/protocol.hpp"

namespace smartcash::daemon {

/// Sends one request line and reads one answer line. Returns the decoded answer, or nullopt
/// with *error set (no supervisor listening, timeout, malformed answer).
std::optional<protocol::Json> control_request(
    const std::string& socket_path, const protocol::Json& request, std::string* error,
    std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// Sends raw bytes and reads whatever comes back until the peer closes or a line ends (tests
/// use it for malformed input). Returns nullopt with *error when the connection fails.
std::optional<std::string> control_exchange_raw(
    const std::string& socket_path, const std::string& bytes, std::string* error,
    std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// A connection that sent one request and reads a stream of answer lines (`watch`).
class ControlStream {
  public:
    /// Connects and sends `request`; nullopt with *error when that fails.
    static std::optional<ControlStream> open(const std::string& socket_path,
                                             const protocol::Json& request, std::string* error);
    ControlStream(ControlStream&& other) noexcept;
    ~ControlStream();

    enum class Got { line, timeout, closed };
    /// Waits up to `timeout` for the next line (without '\n') into *line.
    Got next(std::string* line, std::chrono::milliseconds timeout);

  private:
    explicit ControlStream(int fd) : m_fd(fd) {}
    int m_fd = -1;
    std::string m_pending;
};

}  // namespace smartcash::daemon
