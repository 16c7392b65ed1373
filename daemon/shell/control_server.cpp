#include "daemon/shell/control_server.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/post.hpp>

#include "daemon/shell/control_session.hpp"
#include "daemon/shell/peer_credentials.hpp"

namespace smartcash::daemon {

using boost::asio::local::stream_protocol;
using protocol::Json;

namespace {

// An error that concerns only the connection being accepted: accept the next one at once.
bool transient(const boost::system::error_code& ec) {
    return ec == boost::asio::error::connection_aborted || ec == boost::asio::error::interrupted ||
           ec == boost::asio::error::would_block || ec == boost::asio::error::try_again;
}

}  // namespace

ControlServer::ControlServer(boost::asio::io_context& io, Handler handler,
                             std::chrono::milliseconds read_deadline)
    : m_acceptor(io), m_retry(io), m_shared(std::make_shared<ControlShared>()) {
    m_shared->handler = std::move(handler);
    m_shared->deadline = read_deadline;
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

ControlServer::~ControlServer() { close(); }

std::size_t ControlServer::sessions() const { return m_shared->sessions.size(); }

std::size_t ControlServer::watchers() const { return m_shared->watchers; }

void ControlServer::publish(const std::string& line) {
    if (m_shared->watchers == 0) return;
    auto sessions = m_shared->sessions;  // a full watcher is dropped (and erased) meanwhile
    for (const auto& s : sessions)
        if (s->watching()) s->publish(line);
}

std::optional<std::string> ControlServer::listen(const std::string& path) {
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
    if (m_shared->closed) return;
    m_waiting_for_slot = false;  // before evicting: a freed slot must not start a second accept
    // Every slot taken: the idlest client gives its slot up, or new clients wait in the listen
    // backlog until a slot comes free (or a client has been idle long enough).
    if (m_shared->sessions.size() - m_shared->watchers >= max_sessions && !evict_idlest()) {
        m_waiting_for_slot = true;
        accept_later(evict_after_idle / 4);
        return;
    }
    auto shared = m_shared;
    m_acceptor.async_accept(
        [this, shared](const boost::system::error_code& ec, stream_protocol::socket socket) {
            if (shared->closed || ec == boost::asio::error::operation_aborted) return;
            if (!ec) {
                accepted(std::move(socket));
                accept();
            } else if (transient(ec)) {
                accept();
            } else {
                // EMFILE, ENFILE, ENOBUFS, ENOMEM (and anything unexpected): the pending
                // connection stays readable, so trying again at once would fail again at once
                // and spin a core. Wait a little first.
                accept_later(accept_backoff);
            }
        });
}

void ControlServer::accept_later(std::chrono::milliseconds delay) {
    const std::uint64_t generation = ++m_retry_generation;
    m_retry.expires_after(delay);
    m_retry.async_wait([this, shared = m_shared, generation](const boost::system::error_code& ec) {
        if (ec || shared->closed || generation != m_retry_generation) return;
        accept();
    });
}

void ControlServer::accepted(stream_protocol::socket socket) {
    std::optional<std::string> refusal;
    std::string error;
    if (auto uid = peer_uid(socket.native_handle(), &error)) {
        const unsigned own = static_cast<unsigned>(::geteuid());
        if (!peer_allowed(*uid, own))
            refusal = "permission denied: user " + std::to_string(*uid) +
                      " may not use the control socket of user " + std::to_string(own);
    } else {
        refusal = "cannot tell who is connecting (" + error + ")";
    }
    auto session = std::make_shared<ControlSession>(std::move(socket), m_shared, refusal);
    m_shared->sessions.insert(session);
    session->start();
}

bool ControlServer::evict_idlest() {
    std::shared_ptr<ControlSession> idlest;
    for (const auto& s : m_shared->sessions)
        if (!s->watching() && (!idlest || s->last_active() < idlest->last_active())) idlest = s;
    if (!idlest || ControlSession::Clock::now() - idlest->last_active() < evict_after_idle)
        return false;
    idlest->end();
    return true;
}

void ControlServer::close() {
    if (m_shared->closed) return;
    m_shared->closed = true;
    boost::system::error_code ignored;
    m_acceptor.close(ignored);
    m_retry.cancel();
    auto sessions = m_shared->sessions;
    for (const auto& s : sessions) s->end();
    m_shared->sessions.clear();
    if (!m_path.empty()) ::unlink(m_path.c_str());
}

}  // namespace smartcash::daemon
