// Moving down for memory and back up again: a move down that ends a promotion on trial goes back
// to where it came from and doubles the wait; at an epoch's end, a job that has been stable long
// enough with headroom below the next tier's limit is promoted (docs/supervisor.md, Promotion).
#include <algorithm>

#include "daemon/rules/machine.hpp"

namespace smartcash::daemon::rules {

void Machine::memory_move(const std::string& reason, bool relaunch) {
    const double failed_at = m_s.limit_hit_at >= 0 ? m_s.limit_hit_at : m_now;
    const bool on_trial =
        m_s.promoted_from >= 0 &&
        (m_s.promoted_at < 0 || failed_at - m_s.promoted_at < sc().promotion.stable_seconds);
    if (on_trial && present(m_s.promoted_from)) {
        // The tier we were promoted to could not hold: go back and wait twice as long.
        const double base =
            m_s.promotion_wait > 0 ? m_s.promotion_wait : sc().promotion.stable_seconds;
        m_s.promotion_wait = std::min(base * 2, sc().promotion.max_wait_seconds);
        const int back = m_s.promoted_from;
        m_s.promoted_from = -1;
        journal(ev::PromotionFailedEvent{tier_name(), tier(back).name, reason, m_s.promotion_wait});
        move_to(back, reason, relaunch);
        return;
    }
    m_s.promoted_from = -1;
    const int next = next_present_below(m_s.tier, /*journal_skips=*/true);
    if (next < 0) {
        fail_exhausted(reason);
        return;
    }
    move_to(next, reason, relaunch);
}

// The worker stopped for a promotion: launch one tier up, on trial until the new worker's hello.
void Machine::promoted_stop_done() {
    const int from = m_s.tier;
    journal(ev::PromotedEvent{tier(from).name, tier(m_s.stop_target).name});
    move_to(m_s.stop_target, "promotion", /*relaunch=*/false);
    m_s.promoted_from = from;
    m_s.promoted_at = -1;  // the trial starts at the worker's hello
    launch();
}

void Machine::maybe_promote() {
    const PromotionConfig& p = sc().promotion;
    if (m_s.promoted_from >= 0 && m_s.promoted_at >= 0 &&
        m_now - m_s.promoted_at >= p.stable_seconds) {
        // The promoted tier held for a full stable stretch: the promotion stands.
        journal(ev::PromotionKeptEvent{tier_name()});
        m_s.promoted_from = -1;
        m_s.promotion_wait = 0;
    }
    // With several ranks a move up on one rank would be undone at the next join (the lowest
    // tier any rank asks for wins), so ranks are not promoted.
    if (!p.enabled || world() || m_s.phase != WorkerPhase::running ||
        m_s.stop_reason != StopReason::none || m_s.hold != StopReason::none)
        return;
    const int up = next_present_above(m_s.tier);
    if (up < 0) return;
    // The last epoch's end: the worker is about to finish, a move would only delay it.
    if (m_s.total_steps > 0 && m_s.step >= m_s.total_steps) return;
    const double wait = m_s.promotion_wait > 0 ? m_s.promotion_wait : p.stable_seconds;
    if (m_now - m_s.tier_since < wait) return;
    const std::uint64_t limit = tier(up).memory_limit;
    if (limit > 0 &&
        static_cast<double>(m_s.peak_rss_at_tier) >= p.headroom * static_cast<double>(limit))
        return;
    journal(ev::PromotionEvent{tier_name(), tier(up).name, m_now - m_s.tier_since,
                               m_s.peak_rss_at_tier});
    m_s.stop_target = up;
    request_stop(StopReason::promotion, sc().heartbeat_timeout_seconds);
}

}  // namespace smartcash::daemon::rules
