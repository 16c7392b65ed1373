#include "daemon/shell/control_server.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <set>

#include "common/control.hpp"

namespace smartcash::daemon {

using boost::asio::local::stream_protocol;
using protocol::Json;

namespace {
constexpr std::size_t max_sessions = 32;
}

class Session;

struct ControlServer::Shared {
    ControlServer::Handler handler;
    std::chrono::milliseconds deadline;
    std::set<std::shared_ptr<Session>> sessions;
    bool closed = false;
};

class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(stream_protocol::socket socket, std::shared_ptr<ControlServer::Shared> shared)
        : m_socket(std::move(socket)),
          m_timer(m_socket.get_executor()),
          m_buffer(protocol::max_line_bytes + 1),
          m_shared(std::move(shared)) {}

    void start() { read(); }

    void stop() {
        boost::system::error_code ignored;
        m_timer.cancel();
        m_socket.close(ignored);
    }

  private:
    void read() {
        auto self = shared_from_this();
        // The deadline covers one whole request line: a client that trickles bytes is cut off.
        m_timer.expires_after(m_shared->deadline);
        m_timer.async_wait([self](const boost::system::error_code& ec) {
            if (!ec) self->end();
        });
        boost::asio::async_read_until(
            m_socket, m_buffer, '\n', [self](const boost::system::error_code& ec, std::size_t n) {
                self->m_timer.cancel();
                if (ec == boost::asio::error::not_found) {
                    self->reply_and_close(protocol::control_error(
                        "request longer than " + std::to_string(protocol::max_line_bytes) +
                        " bytes"));
                    return;
                }
                if (ec) {
                    self->end();
                    return;
                }
                std::string line(boost::asio::buffers_begin(self->m_buffer.data()),
                                 boost::asio::buffers_begin(self->m_buffer.data()) +
                                     static_cast<std::ptrdiff_t>(n - 1));
                self->m_buffer.consume(n);
                if (!line.empty() && line.back() == '\r') line.pop_back();
                self->answer(line);
            });
    }

    void answer(const std::string& line) {
        std::string error;
        Json reply;
        if (auto request = protocol::decode(line, &error, protocol::command_key)) {
            try {
                reply = m_shared->handler(*request);
            } catch (const std::exception& e) {
                reply = protocol::control_error(std::string("internal error: ") + e.what());
            }
        } else {
            reply = protocol::control_error(error);
        }
        write(protocol::encode(reply), /*then_close=*/false);
    }

    void reply_and_close(const Json& reply) { write(protocol::encode(reply), /*then_close=*/true); }

    void write(std::string text, bool then_close) {
        auto self = shared_from_this();
        auto data = std::make_shared<std::string>(std::move(text));
        // A client that does not read its answers is cut off by the same deadline.
        m_timer.expires_after(m_shared->deadline);
        m_timer.async_wait([self](const boost::system::error_code& ec) {
            if (!ec) self->end();
        });
        boost::asio::async_write(
            m_socket, boost::asio::buffer(*data),
            [self, data, then_close](const boost::system::error_code& ec, std::size_t) {
                self->m_timer.cancel();
                if (ec || then_close) {
                    self->end();
                    return;
                }
                self->read();
            });
    }

    void end() {
        stop();
        m_shared->sessions.erase(shared_from_this());
    }

    stream_protocol::socket m_socket;
    boost::asio::steady_timer m_timer;
    boost::asio::streambuf m_buffer;
    std::shared_ptr<ControlServer::Shared> m_shared;
};

ControlServer::ControlServer(boost::asio::io_context& io, Handler handler,
                             std::chrono::milliseconds read_deadline)
    : m_acceptor(io), m_shared(std::make_shared<Shared>()) {
    m_shared->handler = std::move(handler);
    m_shared->deadline = read_deadline;
}

ControlServer::~ControlServer() { close(); }

std::optional<std::string> ControlServer::listen(const std::string& path) {
    stream_protocol::endpoint endpoint;
    if (path.size() >= sizeof(sockaddr_un::sun_path))
        return "socket path too long (" + std::to_string(path.size()) +
               " bytes, the system allows " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
               "): " + path + "; use a shorter run directory";
    ::unlink(path.c_str());
    boost::system::error_code ec;
    m_acceptor.open(stream_protocol(), ec);
    if (!ec) {
        // Create the socket owner-only from the start; chmod after bind would leave a window.
        const mode_t old = ::umask(077);
        m_acceptor.bind(stream_protocol::endpoint(path), ec);
        ::umask(old);
    }
    if (!ec) ::chmod(path.c_str(), 0600);
    if (!ec) m_acceptor.listen(boost::asio::socket_base::max_listen_connections, ec);
    if (ec) return "cannot listen on " + path + ": " + ec.message();
    m_path = path;
    accept();
    return std::nullopt;
}

void ControlServer::accept() {
    auto shared = m_shared;
    m_acceptor.async_accept(
        [this, shared](const boost::system::error_code& ec, stream_protocol::socket socket) {
            if (shared->closed || ec == boost::asio::error::operation_aborted) return;
            if (!ec) {
                if (shared->sessions.size() >= max_sessions) {
                    boost::system::error_code ignored;
                    socket.close(ignored);
                } else {
                    auto session = std::make_shared<Session>(std::move(socket), shared);
                    shared->sessions.insert(session);
                    session->start();
                }
            }
            accept();
        });
}

void ControlServer::close() {
    if (m_shared->closed) return;
    m_shared->closed = true;
    boost::system::error_code ignored;
    m_acceptor.close(ignored);
    auto sessions = m_shared->sessions;
    for (const auto& s : sessions) s->stop();
    m_shared->sessions.clear();
    if (!m_path.empty()) ::unlink(m_path.c_str());
}

}  // namespace smartcash::daemon
