#include "daemon/rules/progress_rate.hpp"

namespace smartcash::daemon {

void LiveProgress::observe(double now, const protocol::Progress& report) {
    m_last = report;
    if (!report.step) return;
    // A step that goes back (a resume from an older checkpoint) starts the rate afresh.
    if (!m_samples.empty() && *report.step < m_samples.back().step) m_samples.clear();
    m_samples.push_back({now, *report.step});
    while (m_samples.size() > 2 && now - m_samples.front().at > window_s) m_samples.pop_front();
}

void LiveProgress::restart() { m_samples.clear(); }

std::optional<double> LiveProgress::steps_per_s() const {
    if (m_samples.size() < 2) return std::nullopt;
    const double seconds = m_samples.back().at - m_samples.front().at;
    const auto steps = m_samples.back().step - m_samples.front().step;
    if (seconds <= 0 || steps <= 0) return std::nullopt;
    return static_cast<double>(steps) / seconds;
}

std::optional<double> LiveProgress::eta_s() const {
    auto rate = steps_per_s();
    if (!rate || !m_last || !m_last->total_steps || m_samples.empty()) return std::nullopt;
    const auto left = *m_last->total_steps - m_samples.back().step;
    return left > 0 ? static_cast<double>(left) / *rate : 0.0;
}

}  // namespace smartcash::daemon
