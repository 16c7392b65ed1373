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

void Machine::publish_end(ExitClass cls, StopReason hold, const std::string& what) {
    PublishEnd p;
    p.exit_class = to_string(cls);
    p.step = m_s.last_checkpoint_step;
    p.tier = m_s.tier;
    if (cls == ExitClass::done) return;  // every rank finishes at the same step
    if (cls == ExitClass::fatal) {
        p.kind = world::failed;
        p.detail = what + (m_s.last_error.empty() ? "" : ": " + m_s.last_error);
    } else if (hold == StopReason::stop) {
        p.kind = world::stop;
    } else {
        // Shutdown included: the others wait in the next round until this rank is back.
        p.kind = world::relaunch;
        if (cls == ExitClass::oom || cls == ExitClass::oom_killed ||
            m_s.stop_reason == StopReason::memory) {
            const int next = next_present_below(m_s.tier, /*journal_skips=*/false);
            if (next >= 0) p.tier = next;
        } else if (m_s.stop_reason == StopReason::tier && m_s.stop_target >= 0) {
            p.tier = m_s.stop_target;  // `smartcashctl tier` to a lower tier on this rank
        }
    }
    journal(ev::WorldPublishEvent{m_rank, p.kind, p.exit_class, tier(p.tier).name});
    act(std::move(p));
}

}  // namespace smartcash::daemon::rules
