// supervisor.metrics_listen: GET /metrics over HTTP (Boost.Beast) for a Prometheus scraper, the
// same text as the control socket's `metrics`. Off unless configured; a port alone listens on
// loopback only. Each connection answers one request and is closed; at most 16 at once, each
// with a 10 s deadline, so a scraper that stalls costs only its own connection. When every slot
// is taken, the connection that has waited longest for its request (at least evict_after_idle)
// is closed to make room, as on the control socket; until then new ones wait in the listen
// backlog.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/listen_address.hpp"

namespace smartcash::daemon {

class MetricsHttp {
  public:
    /// `text` makes the exposition when a request comes.
    MetricsHttp(boost::asio::io_context& io, std::function<std::string()> text);
    ~MetricsHttp();

    /// Connections served at once.
    static constexpr std::size_t max_connections = 16;
    /// How long a connection may take to send its request, and then to take the answer.
    static constexpr std::chrono::seconds deadline{10};
    /// How long a connection must have waited for its request to lose its slot to a new one
    /// when all are taken.
    static constexpr std::chrono::milliseconds evict_after_idle{1000};
    /// The wait before accepting again after accept() failed for want of descriptors or memory.
    static constexpr std::chrono::milliseconds accept_backoff{100};

    /// Binds and listens (port 0: any free port); an error message on failure.
    std::optional<std::string> listen(const ListenAddress& address);
    /// The port listened on (0 before listen()).
    unsigned short port() const;
    /// Stops accepting and closes every open connection.
    void close();

    struct Shared;

  private:
    void accept();
    void accept_later(std::chrono::milliseconds delay);
    bool evict_idlest();

    boost::asio::ip::tcp::acceptor m_acceptor;
    boost::asio::steady_timer m_retry;  // the wait before accepting again
    std::uint64_t m_retry_generation = 0;
    bool m_waiting_for_slot = false;
    std::shared_ptr<Shared> m_shared;
};

}  // namespace smartcash::daemon
