#include "daemon/shell/metrics_http.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <vector>

namespace smartcash::daemon {

namespace beast = boost::beast;
namespace http = boost::beast::http;
using boost::asio::ip::tcp;

namespace {
class HttpSession;
}  // namespace

struct MetricsHttp::Shared {
    std::function<std::string()> text;
    std::vector<HttpSession*> sessions;  // open connections; each takes itself out as it ends
    std::function<void()> slot_freed;    // set by the server, called when a connection ends
    bool closed = false;
};

namespace {

using Clock = std::chrono::steady_clock;

class HttpSession : public std::enable_shared_from_this<HttpSession> {
  public:
    HttpSession(tcp::socket socket, std::shared_ptr<MetricsHttp::Shared> shared)
        : m_stream(std::move(socket)), m_shared(std::move(shared)), m_since(Clock::now()) {
        m_shared->sessions.push_back(this);
    }
    ~HttpSession() { forget(); }

    void start() {
        m_stream.expires_after(MetricsHttp::deadline);
        http::async_read(m_stream, m_buffer, m_request,
                         [self = shared_from_this()](beast::error_code ec, std::size_t) {
                             self->m_waiting = false;
                             if (!ec && !self->m_ended) self->answer();
                         });
    }

    /// Still waiting for (the rest of) its request.
    bool waiting() const { return m_waiting && !m_ended; }
    /// When it was accepted.
    Clock::time_point since() const { return m_since; }

    /// Closes the connection now and gives its slot up; its handlers end it as they complete.
    void end() {
        if (m_ended) return;
        m_ended = true;
        beast::error_code ignored;
        m_stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        m_stream.close();
        forget();
    }

  private:
    void forget() {
        auto& sessions = m_shared->sessions;
        const auto it = std::find(sessions.begin(), sessions.end(), this);
        if (it == sessions.end()) return;
        sessions.erase(it);
        if (m_shared->slot_freed && !m_shared->closed) m_shared->slot_freed();
    }

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
        m_stream.expires_after(MetricsHttp::deadline);
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
    Clock::time_point m_since;
    bool m_waiting = true;
    bool m_ended = false;
};

}  // namespace

MetricsHttp::MetricsHttp(boost::asio::io_context& io, std::function<std::string()> text)
    : m_acceptor(io), m_retry(io), m_shared(std::make_shared<Shared>()) {
    m_shared->text = std::move(text);
    // A slot came free while accepting waits for one: accept now rather than at the next retry.
    m_shared->slot_freed = [this] {
        if (!m_waiting_for_slot) return;
        m_waiting_for_slot = false;
        ++m_retry_generation;
        m_retry.cancel();
        boost::asio::post(m_acceptor.get_executor(), [this, shared = m_shared] {
            if (!shared->closed) accept();
        });
    };
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
    if (m_shared->closed) return;
    m_waiting_for_slot = false;
    if (m_shared->sessions.size() >= max_connections) {
        // Every slot taken: once a new connection is waiting, the one that has waited longest
        // for its request gives its slot up; until one has waited long enough (or a slot comes
        // free) the new one stays in the listen backlog.
        m_acceptor.async_wait(tcp::acceptor::wait_read,
                              [this, shared = m_shared](const boost::system::error_code& ec) {
                                  if (shared->closed || ec == boost::asio::error::operation_aborted)
                                      return;
                                  if (ec) return accept_later(accept_backoff);
                                  if (shared->sessions.size() < max_connections || evict_idlest())
                                      return accept();
                                  m_waiting_for_slot = true;
                                  accept_later(evict_after_idle / 4);
                              });
        return;
    }
    m_acceptor.async_accept(
        [this, shared = m_shared](const boost::system::error_code& ec, tcp::socket socket) {
            if (shared->closed || ec == boost::asio::error::operation_aborted) return;
            if (ec) {
                // Out of descriptors or memory: wait a little rather than spin on the same error.
                accept_later(accept_backoff);
                return;
            }
            std::make_shared<HttpSession>(std::move(socket), shared)->start();
            accept();
        });
}

void MetricsHttp::accept_later(std::chrono::milliseconds delay) {
    const std::uint64_t generation = ++m_retry_generation;
    m_retry.expires_after(delay);
    m_retry.async_wait([this, shared = m_shared, generation](const boost::system::error_code& ec) {
        if (ec || shared->closed || generation != m_retry_generation) return;
        accept();
    });
}

bool MetricsHttp::evict_idlest() {
    HttpSession* idlest = nullptr;
    for (HttpSession* s : m_shared->sessions)
        if (s->waiting() && (!idlest || s->since() < idlest->since())) idlest = s;
    if (!idlest || Clock::now() - idlest->since() < evict_after_idle) return false;
    idlest->end();
    return true;
}

void MetricsHttp::close() {
    if (m_shared->closed) return;
    m_shared->closed = true;
    boost::system::error_code ignored;
    m_acceptor.close(ignored);
    m_retry.cancel();
    const auto sessions = m_shared->sessions;
    for (HttpSession* s : sessions) s->end();
}

}  // namespace smartcash::daemon
