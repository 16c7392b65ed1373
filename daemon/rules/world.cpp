// A job with several ranks (docs/distributed.md): every launch waits until every rank has joined
// the round, the round runs at the lowest tier any rank asked for, and any worker's end ends the
// round for all: its supervisor publishes it, the others stop their workers and all join the
// next round together. A stop on one rank stops every rank; a failure fails every rank.
#include "common/world_messages.hpp"
#include "daemon/rules/machine.hpp"

namespace smartcash::daemon::rules {

namespace world = protocol::world;

void Machine::join_world() {
    m_s.status = JobStatus::running;
    m_s.phase = WorkerPhase::joining;
    m_s.pid = 0;
    m_s.stop_reason = StopReason::none;
    m_s.stop_target = -1;
    m_s.hold = StopReason::none;
    journal(ev::WorldJoinEvent{m_rank, tier_name()});
    act(JoinWorld{m_s.tier});
    act(SaveState{});
}

void Machine::on(const WorldFormed& e) {
    int target = e.tier;
    if (target < 0 || target >= tier_count()) {
        fail("the ranks agreed on tier index " + std::to_string(target) + ", which this config " +
             "does not have: every rank needs the same config");
        return;
    }
    if (!present(target)) {
        skip_tier(target);
        target = next_present_below(target, /*journal_skips=*/true);
        if (target < 0) {
            fail_exhausted("another rank's tier");
            return;
        }
    }
    journal(ev::WorldFormedEvent{e.round, tier(target).name, e.tiers});
    if (target != m_s.tier) move_to(target, "another rank", /*relaunch=*/false);
    m_s.world_round = e.round;
    start_worker();
}

void Machine::stop_for_peer() {
    switch (m_s.phase) {
        case WorkerPhase::running:
            request_stop(StopReason::peer, sc().heartbeat_timeout_seconds);
            return;
        case WorkerPhase::spawning:
            // Asked as soon as the worker has started (WorkerStarted).
            m_s.stop_reason = StopReason::peer;
            return;
        default:
            // Stopping or gone already, or waiting for the next round.
            return;
    }
}

void Machine::on(const PeerEnded& e) {
    const std::string to =
        e.tier >= 0 && e.tier < tier_count() ? tier(e.tier).name : std::to_string(e.tier);
    journal(ev::PeerEndedEvent{e.round, e.rank, e.kind, e.exit_class, to, e.step, e.detail});
    const bool waiting = m_s.phase == WorkerPhase::joining || m_s.phase == WorkerPhase::idle ||
                         m_s.phase == WorkerPhase::backoff;
    if (e.kind == world::stop) {
        if (m_s.hold == StopReason::shutdown) return;
        if (waiting) {
            act(CancelTimer{TimerKind::backoff});
            m_s.hold = StopReason::stop;
            hold_now();
            return;
        }
        m_s.hold = StopReason::stop;
        if (m_s.phase == WorkerPhase::running)
            request_stop(StopReason::stop, sc().heartbeat_timeout_seconds);
        return;
    }
    if (e.kind == world::failed) {
        const std::string message = "rank " + std::to_string(e.rank) + " failed" +
                                    (e.detail.empty() ? "" : ": " + e.detail);
        if (waiting) {
            act(CancelTimer{TimerKind::backoff});
            fail(message);
            return;
        }
        m_s.peer_failure = message;
        stop_for_peer();
        return;
    }
    // A relaunch: a late report of a round this rank has already left changes nothing.
    if (m_s.world_round >= 0 && e.round != m_s.world_round) return;
    stop_for_peer();
}

void Machine::on(const WorldAgentLost& e) {
    // Without the agent this rank cannot hear of the others: its worker stops, and the next
    // round is joined through the agent the shell starts again.
    journal(ev::WorldAgentEvent{"lost", "", e.message});
    stop_for_peer();
}

void Machine::publish_end(ExitClass cls, StopReason hold, std::size_t at) {
    if (cls == ExitClass::done) return;  // every rank finishes at the same step
    PublishEnd p;
    p.exit_class = to_string(cls);
    p.step = m_s.last_checkpoint_step;
    p.tier = m_s.tier;  // the tier this rank goes on at, after any move just decided
    if (m_s.status == JobStatus::failed) {
        p.kind = world::failed;
        p.detail = m_s.message;
    } else if (hold == StopReason::stop) {
        p.kind = world::stop;
    } else {
        // A shutdown included: the others wait in the next round until this rank is back.
        p.kind = world::relaunch;
    }
    // Before this rank's join of the next round, if the decision joined it.
    const std::vector<Action> told{
        JournalEntry{ev::WorldPublishEvent{m_rank, p.kind, p.exit_class, tier(p.tier).name}},
        std::move(p)};
    m_actions.insert(m_actions.begin() + static_cast<std::ptrdiff_t>(at), told.begin(), told.end());
}

}  // namespace smartcash::daemon::rules
