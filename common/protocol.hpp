// Wire protocols: JSON lines, one object per line (docs/protocol.md).
//
// This file: the framing every channel shares. The messages themselves, one struct each:
//   reports.hpp         worker -> supervisor on the report fd (hello, progress, checkpoint, ...)
//   commands.hpp        supervisor -> worker on the command fd (checkpoint, checkpoint_and_stop)
//   control.hpp         client <-> supervisor on control.sock ({"cmd": ...} -> {"ok": ...})
//   journal_events.hpp  the supervisor's journal, RUN_DIR/events.jsonl
// wire_fields.hpp turns them into JSON and back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace smartcash::protocol {

using Json = nlohmann::json;

inline constexpr int version = 1;
/// Longest line either side accepts; longer lines are rejected (and the connection closed).
inline constexpr std::size_t max_line_bytes = 64 * 1024;

/// The field that tells messages apart: "type" on the report fd, "cmd" on the command fd and on
/// control.sock, "event" in the journal.
inline constexpr const char* report_key = "type";
inline constexpr const char* command_key = "cmd";
inline constexpr const char* event_key = "event";

/// Environment variables through which the supervisor hands the worker its channel fds.
inline constexpr const char* report_fd_env = "SMARTCASH_REPORT_FD";
inline constexpr const char* command_fd_env = "SMARTCASH_COMMAND_FD";

/// Serialises one message as a single line ending in '\n'.
std::string encode(const Json& message);

/// Parses one line (without its '\n'). Returns nullopt and sets *error on malformed input,
/// on a line longer than max_line_bytes, or when the value is not an object with a string "type"
/// (worker channel) / "cmd" (control channel) field named by `key`.
std::optional<Json> decode(std::string_view line, std::string* error, const char* key = report_key);

/// Splits a byte stream into lines. Feed bytes; take complete lines. A line longer than
/// max_line_bytes (counting a trailing '\r') sets overflowed() and is discarded up to its
/// newline, however many reads it spans; the next line comes out whole. One trailing '\r' is
/// stripped from each line (CRLF senders are accepted).
class LineSplitter {
  public:
    void feed(const char* data, std::size_t size);
    /// Next complete line (without '\n'), or nullopt.
    std::optional<std::string> next();
    bool overflowed() const { return m_overflowed; }
    /// Returns overflowed() and clears it, keeping the discard state of a line still arriving.
    bool take_overflow() {
        bool was = m_overflowed;
        m_overflowed = false;
        return was;
    }

  private:
    std::string m_buffer;
    std::size_t m_scan = 0;
    bool m_discarding = false;
    bool m_overflowed = false;
};

}  // namespace smartcash::protocol
