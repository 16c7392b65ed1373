#include "daemon/shell/run_dir_writer.hpp"

#include <chrono>
#include <exception>

namespace smartcash::daemon {

RunDirWriter::RunDirWriter(boost::asio::io_context& io, const std::string& run_dir,
                           std::function<void()> save_state,
                           std::function<void(const std::string&, EventWeight)> log,
                           std::function<double()> now)
    : m_journal(run_dir),
      m_retry(io),
      m_save_state(std::move(save_state)),
      m_log(std::move(log)),
      m_now(std::move(now)) {}

void RunDirWriter::journal(const std::string& line) {
    constexpr std::size_t max_unwritten = 100000;
    if (m_unwritten.size() >= max_unwritten) {
        m_unwritten.pop_front();
        ++m_dropped;
    }
    m_unwritten.push_back(line);
    flush();
}

void RunDirWriter::save_state() {
    m_state_unsaved = true;
    flush();
}

void RunDirWriter::flush() {
    std::string error;
    try {
        while (!m_unwritten.empty()) {
            m_journal.write(m_unwritten.front());
            m_unwritten.pop_front();
        }
    } catch (const std::exception& e) {
        error = std::string("cannot write the journal: ") + e.what();
    }
    if (error.empty() && m_state_unsaved) {
        try {
            m_save_state();
            m_state_unsaved = false;
        } catch (const std::exception& e) {
            error = std::string("cannot write state.json: ") + e.what();
        }
    }
    if (error.empty()) {
        if (!m_error.empty()) {
            m_log(
                "the run directory is writable again; state.json and the journal are up to "
                "date" +
                    (m_dropped ? " (" + std::to_string(m_dropped) + " journal lines were dropped)"
                               : std::string()),
                EventWeight::notable);
            m_error.clear();
            m_dropped = 0;
        }
        return;
    }
    if (m_error != error)
        m_log(error + "; keeping the state in memory and retrying", EventWeight::alarm);
    if (m_error.empty()) m_failing_since = m_now();
    m_error = error;
    if (m_retry_armed) return;
    m_retry_armed = true;
    m_retry.expires_after(std::chrono::seconds(1));
    m_retry.async_wait([this](const boost::system::error_code& ec) {
        m_retry_armed = false;
        if (!ec) flush();
    });
}

protocol::Persistence RunDirWriter::view() const {
    protocol::Persistence p;
    if (m_error.empty()) return p;
    p.ok = false;
    p.error = m_error;
    p.failing_for_s = m_now() - m_failing_since;
    p.unwritten_journal_lines = m_unwritten.size();
    p.state_unsaved = m_state_unsaved;
    return p;
}

void RunDirWriter::close() { m_retry.cancel(); }

}  // namespace smartcash::daemon
