// What the memory readings decide: the hard limit (the watchdog's SIGKILL), the soft limit (a
// checkpoint-and-stop before a move down) and the readings kept for judging a later SIGKILL (the
// last seconds, and whether pressure was ever critical during the launch).
#include <algorithm>
#include <csignal>

#include "common/units.hpp"
#include "daemon/rules/machine.hpp"

namespace smartcash::daemon::rules {

void Machine::check_soft_limit(const MemorySample& e) {
    const TierConfig& t = tier(m_s.tier);
    std::string why;
    if (near_tier_limit(e.rss, t, sc())) {
        why = "worker RSS " + format_size(e.rss) + " reached " +
              std::to_string(static_cast<int>(sc().soft_limit_fraction * 100 + 0.5)) +
              "% of the limit " + format_size(t.memory_limit);
    } else if (system_memory_short(e.available, sc())) {
        why = "system memory available " + format_size(*e.available) + " below " +
              format_size(sc().min_available);
    } else if (m_s.pressure_since && m_now - *m_s.pressure_since >= sc().pressure_seconds) {
        why = "memory pressure above " + std::to_string(static_cast<int>(sc().pressure_threshold)) +
              "% for " + format_duration(m_now - *m_s.pressure_since);
    }
    if (why.empty()) return;
    const bool on_trial = m_s.promoted_from >= 0;
    if (!on_trial && next_present_below(m_s.tier, /*journal_skips=*/false) < 0) {
        // Nowhere lower to go: leave it to the hard limit rather than stopping for nothing.
        if (!m_s.soft_limit_noted) {
            journal(ev::SoftLimitLastTierEvent{t.name, why});
            m_s.soft_limit_noted = true;
        }
        return;
    }
    journal(ev::SoftLimitEvent{t.name, why, e.rss});
    m_s.limit_hit_at = m_now;
    request_stop(StopReason::memory, sc().heartbeat_timeout_seconds);
}

// Keeps the readings of the last seconds (at least the last three): a kill is blamed on memory
// only when memory was short then, not because it touched the limit an hour earlier.
void Machine::remember_recent(const MemorySample& e) {
    constexpr std::size_t keep_at_least = 3;
    constexpr std::size_t keep_at_most = 64;
    const double window = std::max(2.0, 3 * sc().poll_interval_seconds);
    m_s.recent.push_back(RecentSample{m_now, e.rss, e.available, e.pressure});
    std::size_t drop = 0;
    while (m_s.recent.size() - drop > keep_at_least &&
           (m_s.recent[drop].at < m_now - window || m_s.recent.size() - drop > keep_at_most))
        ++drop;
    m_s.recent.erase(m_s.recent.begin(), m_s.recent.begin() + static_cast<long>(drop));
}

void Machine::on(const MemorySample& e) {
    m_s.shown.rss = e.rss;
    m_s.shown.available = e.available;
    m_s.peak_rss_launch = std::max(m_s.peak_rss_launch, e.rss);
    remember_recent(e);
    if (critical_pressure(e.pressure)) m_s.critical_pressure_seen = true;
    m_s.peak_rss_at_tier = std::max(m_s.peak_rss_at_tier, e.rss);
    TierRecord& record = m_s.tier_records[tier_name()];
    record.peak_rss = std::max(record.peak_rss, e.rss);
    if (m_s.phase == WorkerPhase::killing) return;
    const TierConfig& t = tier(m_s.tier);
    if (t.memory_limit > 0 && e.rss >= t.memory_limit) {
        journal(ev::WatchdogKillEvent{t.name, e.rss, t.memory_limit});
        m_s.kill_reason = KillReason::memory;
        if (m_s.limit_hit_at < 0) m_s.limit_hit_at = m_now;
        m_s.phase = WorkerPhase::killing;
        act(CancelTimer{TimerKind::stop});
        act(CancelTimer{TimerKind::grace});
        act(SignalWorker{SIGKILL});
        return;
    }
    if (pressure_high(e.pressure, sc())) {
        if (!m_s.pressure_since) m_s.pressure_since = m_now;
    } else {
        m_s.pressure_since.reset();
    }
    if (m_s.phase == WorkerPhase::running) check_soft_limit(e);
}

}  // namespace smartcash::daemon::rules
