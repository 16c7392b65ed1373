#include "daemon/shell/metrics_http.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>

namespace smartcash::daemon {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using boost::asio::ip::tcp;

namespace {
constexpr std::size_t max_connections = 16;
constexpr auto deadline = std::chrono::seconds(10);
}  // namespace

struct MetricsHttp::Shared {
    std::function<std::string()> text;
    std::size_t connections = 0;
    bool closed = false;
};

namespace {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
  public:
    HttpSession(tcp::socket socket, std::shared_ptr<MetricsHttp::Shared> shared)
        : m_stream(std::move(socket)), m_shared(std::move(shared)) {
        ++m_shared->connections;
    }
    ~HttpSession() { --m_shared->connections; }

    void start() {
        m_stream.expires_after(deadline);
        http::async_read(m_stream, m_buffer, m_request,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             if (!ec) self->answer();
                         });
    }

  private:
    void answer() {
        m_response.version(m_request.version());
        m_response.keep_alive(false);
        if (m_request.method() != http::verb::get) {
            m_response.result(http::status::method_not_allowed);
            m_response.set(http::field::allow, "GET");
            m_response.body() = "only GET\n";
        } else if (m_request.target() != "/metrics") {
            m_response.result(http::status::not_found);
            m_response.body() = "not found: try /metrics\n";
        } else {
            m_response.result(http::status::ok);
            m_response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
            try {
                m_response.body() = m_shared->text();
            } catch (const std::exception& e) {
                m_response.result(http::status::internal_server_error);
                m_response.body() = std::string(e.what()) + "\n";
            }
        }
        if (m_response.result() != http::status::ok)
            m_response.set(http::field::content_type, "text/plain; charset=utf-8");
        m_response.prepare_payload();
        m_stream.expires_after(deadline);
        http::async_write(m_stream, m_response,
                          [self = shared_from_this()](beast::error_code, std::size_t) {
                              beast::error_code ignored;
                              self->m_stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
                          });
    }

    beast::tcp_stream m_stream;
    beast::flat_buffer m_buffer;
    http::request<http::string_body> m_request;
    http::response<http::string_body> m_response;
    std::shared_ptr<MetricsHttp::Shared> m_shared;
};

}  // namespace

MetricsHttp::MetricsHttp(boost::asio::io_context& io, std::function<std::string()> text)
    : m_acceptor(io), m_shared(std::make_shared<Shared>()) {
    m_shared->text = std::move(text);
}

MetricsHttp::~MetricsHttp() { close(); }

std::optional<std::string> MetricsHttp::listen(const ListenAddress& address) {
    const std::string where = address.host + ":" + std::to_string(address.port);
    boost::system::error_code ec;
    tcp::resolver resolver(m_acceptor.get_executor());
    auto endpoints = resolver.resolve(address.host, std::to_string(address.port),
                                      tcp::resolver::numeric_service, ec);
    if (ec || endpoints.empty())
        return "metrics_listen " + where + ": cannot resolve the host: " + ec.message();
    const tcp::endpoint endpoint = endpoints.begin()->endpoint();
    m_acceptor.open(endpoint.protocol(), ec);
    if (!ec) m_acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) m_acceptor.bind(endpoint, ec);
    if (!ec) m_acceptor.listen(boost::asio::socket_base::max_listen_connections, ec);
    if (ec) return "metrics_listen " + where + ": " + ec.message();
    accept();
    return std::nullopt;
}

unsigned short MetricsHttp::port() const {
    boost::system::error_code ec;
    const auto endpoint = m_acceptor.local_endpoint(ec);
    return ec ? 0 : endpoint.port();
}

void MetricsHttp::accept() {
    m_acceptor.async_accept(
        [this, shared = m_shared](const boost::system::error_code& ec, tcp::socket socket) {
            if (shared->closed || ec == boost::asio::error::operation_aborted) return;
            if (ec) {
                // Out of descriptors or memory: wait a little rather than spin on the same error.
                auto timer = std::make_shared<boost::asio::steady_timer>(m_acceptor.get_executor());
                timer->expires_after(std::chrono::milliseconds(100));
                timer->async_wait([this, shared, timer](const boost::system::error_code& e) {
                    if (!e && !shared->closed) accept();
                });
                return;
            }
            if (shared->connections < max_connections)
                std::make_shared<HttpSession>(std::move(socket), shared)->start();
            accept();  // a connection over the bound is closed as `socket` goes
        });
}

void MetricsHttp::close() {
    if (m_shared->closed) return;
    m_shared->closed = true;
    boost::system::error_code ignored;
    m_acceptor.close(ignored);
}

}  // namespace smartcash::daemon
