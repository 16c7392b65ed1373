#include "daemon/shell/control_session.hpp"

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include "common/control.hpp"

namespace smartcash::daemon {

using protocol::Json;

ControlSession::ControlSession(boost::asio::local::stream_protocol::socket socket,
                               std::shared_ptr<ControlShared> shared,
                               std::optional<std::string> refusal)
    : m_socket(std::move(socket)),
      m_timer(m_socket.get_executor()),
      m_buffer(protocol::max_line_bytes + 1),
      m_shared(std::move(shared)),
      m_refusal(std::move(refusal)),
      m_last_active(Clock::now()) {}

void ControlSession::start() {
    if (m_refusal) {
        send(protocol::encode(protocol::control_error(*m_refusal)), /*then_close=*/true);
        return;
    }
    read();
}

void ControlSession::end() {
    if (m_ended) return;
    m_ended = true;
    if (m_watching) --m_shared->watchers;
    disarm_deadline();
    boost::system::error_code ignored;
    m_socket.close(ignored);
    auto self = shared_from_this();  // keeps this alive while the server forgets it
    m_shared->sessions.erase(self);
    if (m_shared->slot_freed && !m_shared->closed) m_shared->slot_freed();
}

void ControlSession::arm_deadline() {
    auto self = shared_from_this();
    const std::uint64_t generation = ++m_deadline_generation;
    m_timer.expires_after(m_shared->deadline);
    m_timer.async_wait([self, generation](const boost::system::error_code& ec) {
        if (ec || generation != self->m_deadline_generation) return;
        self->end();
    });
}

void ControlSession::disarm_deadline() {
    ++m_deadline_generation;
    m_timer.cancel();
}

void ControlSession::read() {
    if (m_ended) return;
    auto self = shared_from_this();
    // The deadline covers one whole request line: a client that trickles bytes is cut off.
    arm_deadline();
    boost::asio::async_read_until(
        m_socket, m_buffer, '\n', [self](const boost::system::error_code& ec, std::size_t n) {
            if (self->m_ended) return;
            self->disarm_deadline();
            if (ec == boost::asio::error::not_found) {
                self->send(protocol::encode(protocol::control_error(
                               "request longer than " + std::to_string(protocol::max_line_bytes) +
                               " bytes")),
                           /*then_close=*/true);
                return;
            }
            if (ec) {
                self->end();
                return;
            }
            self->m_last_active = Clock::now();
            std::string line(boost::asio::buffers_begin(self->m_buffer.data()),
                             boost::asio::buffers_begin(self->m_buffer.data()) +
                                 static_cast<std::ptrdiff_t>(n - 1));
            self->m_buffer.consume(n);
            if (!line.empty() && line.back() == '\r') line.pop_back();
            self->answer(line);
        });
}

void ControlSession::answer(const std::string& line) {
    std::string error;
    Json reply;
    auto request = protocol::decode(line, &error, protocol::command_key);
    const bool watch = request && request->value(protocol::command_key, std::string()) ==
                                      protocol::control_cmd::watch;
    if (watch && m_shared->watchers >= max_watchers) {
        reply = protocol::control_error("too many watchers (" + std::to_string(max_watchers) + ")");
    } else if (request) {
        try {
            reply = m_shared->handler(*request);
        } catch (const std::exception& e) {
            reply = protocol::control_error(std::string("internal error: ") + e.what());
        }
    } else {
        reply = protocol::control_error(error);
    }
    send(protocol::encode(reply), /*then_close=*/false);
    if (watch && reply.value("ok", false)) become_watcher();
}

void ControlSession::become_watcher() {
    m_watching = true;
    ++m_shared->watchers;
    if (m_shared->slot_freed) m_shared->slot_freed();  // its request slot is free again
    read_until_gone();
}

// A watcher sends nothing more that counts; reading is how its leaving is seen.
void ControlSession::read_until_gone() {
    auto self = shared_from_this();
    auto scratch = std::make_shared<std::array<char, 512>>();
    m_socket.async_read_some(boost::asio::buffer(*scratch),
                             [self, scratch](const boost::system::error_code& ec, std::size_t) {
                                 if (self->m_ended) return;
                                 if (ec) {
                                     self->end();
                                     return;
                                 }
                                 self->read_until_gone();
                             });
}

void ControlSession::publish(const std::string& line) {
    if (m_ended || !m_watching) return;
    if (m_queue.size() >= max_queued_lines || m_queued_bytes + line.size() > max_queued_bytes) {
        end();  // it stopped reading: drop it rather than hold the loop or memory
        return;
    }
    send(line, /*then_close=*/false);
}

void ControlSession::send(std::string text, bool then_close) {
    if (m_ended) return;
    m_queued_bytes += text.size();
    m_queue.push_back(std::move(text));
    if (then_close) m_close_after_write = true;
    if (!m_writing) write_next();
}

void ControlSession::write_next() {
    if (m_ended || m_queue.empty()) return;
    m_writing = true;
    auto self = shared_from_this();
    // A client that does not read its answers is cut off by the same deadline.
    arm_deadline();
    boost::asio::async_write(m_socket, boost::asio::buffer(m_queue.front()),
                             [self](const boost::system::error_code& ec, std::size_t) {
                                 if (self->m_ended) return;
                                 self->disarm_deadline();
                                 self->m_writing = false;
                                 self->m_queued_bytes -= self->m_queue.front().size();
                                 self->m_queue.pop_front();
                                 if (ec) {
                                     self->end();
                                     return;
                                 }
                                 self->m_last_active = Clock::now();
                                 if (!self->m_queue.empty()) {
                                     self->write_next();
                                 } else if (self->m_close_after_write) {
                                     self->end();
                                 } else if (!self->m_watching) {
                                     self->read();
                                 }
                             });
}

}  // namespace smartcash::daemon
