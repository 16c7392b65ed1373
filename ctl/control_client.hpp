// The client side of control.sock, for smartcashctl and the tests: one request, one answer.
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

}  // namespace smartcash::daemon
