// RUN_DIR/control.sock: JSON lines, {"cmd": ...} -> {"ok": true|false, ...}. One session per
// connection (control_session.hpp) with a bounded line and a deadline, so a bad or slow client
// only costs its own connection. Watchers (after a `watch` request) are sent what publish() is
// given. Only the supervisor's own user and root may connect
// (peer_credentials.hpp). Errors of accept() that say the process is short of descriptors or
// memory wait before the next try instead of spinning; when every slot is taken, the idlest client
// gives its slot to the new one.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/protocol.hpp"

namespace smartcash::daemon {

struct ControlShared;

class ControlServer {
  public:
    /// Answers one decoded request (it has a string "cmd").
    using Handler = std::function<protocol::Json(const protocol::Json& request)>;

    /// Connections served at once.
    static constexpr std::size_t max_sessions = 32;
    /// How long a client must have been idle to lose its slot to a new one when all are taken.
    static constexpr std::chrono::milliseconds evict_after_idle{1000};
    /// The wait before accepting again after accept() failed for want of descriptors or memory.
    static constexpr std::chrono::milliseconds accept_backoff{100};

    ControlServer(boost::asio::io_context& io, Handler handler,
                  std::chrono::milliseconds read_deadline = std::chrono::seconds(10));
    ~ControlServer();

    /// Binds and listens on `path` with mode 0600, replacing a stale socket file (the caller
    /// holds the run lock). Returns an error message on failure.
    std::optional<std::string> listen(const std::string& path);
    /// Stops accepting and closes every open connection.
    void close();

    /// Open connections, watchers included.
    std::size_t sessions() const;
    /// Connections that asked to `watch`.
    std::size_t watchers() const;
    /// Sends one line (ending in '\n') to every watcher. A watcher whose queue is full is
    /// dropped; this never waits for a client.
    void publish(const std::string& line);

  private:
    void accept();
    void accept_later(std::chrono::milliseconds delay);
    void accepted(boost::asio::local::stream_protocol::socket socket);
    bool evict_idlest();

    boost::asio::local::stream_protocol::acceptor m_acceptor;
    boost::asio::steady_timer m_retry;  // the wait before accepting again
    std::uint64_t m_retry_generation = 0;
    bool m_waiting_for_slot = false;
    std::shared_ptr<ControlShared> m_shared;
    std::string m_path;
};

}  // namespace smartcash::daemon
