// RUN_DIR/control.sock: JSON lines, {"cmd": ...} -> {"ok": true|false, ...}. One session per
// connection with a bounded line and a read deadline, so a bad or slow client only costs its
// own connection.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/protocol.hpp"

namespace smartcash::daemon {

class ControlServer {
  public:
    /// Answers one decoded request (it has a string "cmd").
    using Handler = std::function<protocol::Json(const protocol::Json& request)>;

    ControlServer(boost::asio::io_context& io, Handler handler,
                  std::chrono::milliseconds read_deadline = std::chrono::seconds(10));
    ~ControlServer();

    /// Binds and listens on `path` with mode 0600, replacing a stale socket file (the caller
    /// holds the run lock). Returns an error message on failure.
    std::optional<std::string> listen(const std::string& path);
    /// Stops accepting and closes every open connection.
    void close();

    struct Shared;

  private:
    void accept();

    boost::asio::local::stream_protocol::acceptor m_acceptor;
    std::shared_ptr<Shared> m_shared;
    std::string m_path;
};

}  // namespace smartcash::daemon
