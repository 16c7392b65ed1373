// One connection to control.sock: reads request lines (bounded, with a deadline for each whole
// line), answers each through the server's handler, and writes through a queue. After a `watch`
// request whose answer is ok the session is a watcher: it is sent every published line until
// the client leaves, and is dropped when its queue fills (a client that stopped reading). The
// server (control_server.cpp) owns the sessions; a session that ends removes itself.
#pragma once

#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/protocol.hpp"

namespace smartcash::daemon {

class ControlSession;

/// What the server and its sessions share (the sessions outlive no server: close() ends them).
struct ControlShared {
    std::function<protocol::Json(const protocol::Json&)> handler;
    std::chrono::milliseconds deadline{10000};
    std::set<std::shared_ptr<ControlSession>> sessions;
    std::size_t watchers = 0;  ///< sessions that are watchers (they take no request slot)
    bool closed = false;
    /// Called when a session ends (the server may be waiting for a free slot).
    std::function<void()> slot_freed;
};

class ControlSession : public std::enable_shared_from_this<ControlSession> {
  public:
    using Clock = std::chrono::steady_clock;

    /// A watcher's outgoing queue: past either bound the watcher is dropped.
    static constexpr std::size_t max_queued_lines = 256;
    static constexpr std::size_t max_queued_bytes = 1 << 20;
    /// Watchers at once (they take none of the server's request slots).
    static constexpr std::size_t max_watchers = 32;

    /// `refusal`: answer this error at once and close (a peer that may not connect).
    ControlSession(boost::asio::local::stream_protocol::socket socket,
                   std::shared_ptr<ControlShared> shared, std::optional<std::string> refusal);

    void start();
    /// Closes the connection and removes the session from the server.
    void end();
    /// When the client last completed a request line or received an answer (or connected).
    Clock::time_point last_active() const { return m_last_active; }
    bool watching() const { return m_watching; }
    /// Queues one line (with its '\n') for a watcher; drops the watcher when its queue is full.
    void publish(const std::string& line);

  private:
    void arm_deadline();
    void disarm_deadline();
    void read();
    void answer(const std::string& line);
    void send(std::string text, bool then_close);
    void write_next();
    void become_watcher();
    void read_until_gone();

    boost::asio::local::stream_protocol::socket m_socket;
    boost::asio::steady_timer m_timer;
    // A completion of the deadline timer that was already queued when the timer was cancelled
    // or re-armed still runs; it only counts when its generation is the current one.
    std::uint64_t m_deadline_generation = 0;
    boost::asio::streambuf m_buffer;
    std::shared_ptr<ControlShared> m_shared;
    std::optional<std::string> m_refusal;
    std::deque<std::string> m_queue;  // lines to write, the front one being written
    bool m_writing = false;
    bool m_close_after_write = false;
    std::size_t m_queued_bytes = 0;
    bool m_ended = false;
    bool m_watching = false;
    Clock::time_point m_last_active;
};

}  // namespace smartcash::daemon
