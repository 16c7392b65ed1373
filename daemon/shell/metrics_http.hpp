// supervisor.metrics_listen: GET /metrics over HTTP (Boost.Beast) for a Prometheus scraper, the
// same text as the control socket's `metrics`. Off unless configured; a port alone listens on
// loopback only. Each connection answers one request and is closed; at most 16 at once, each
// with a 10 s deadline, so a scraper that stalls costs only its own connection.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
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

    /// Binds and listens (port 0: any free port); an error message on failure.
    std::optional<std::string> listen(const ListenAddress& address);
    /// The port listened on (0 before listen()).
    unsigned short port() const;
    void close();

    struct Shared;

  private:
    void accept();

    boost::asio::ip::tcp::acceptor m_acceptor;
    std::shared_ptr<Shared> m_shared;
};

}  // namespace smartcash::daemon
