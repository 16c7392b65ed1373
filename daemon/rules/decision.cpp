// The machine's lifecycle: launches, worker ends, timers, shutdown, and the moves between tiers
// they lead to.
#include "daemon/rules/decision.hpp"

#include <algorithm>
#include <csignal>
#include <iterator>

#include "common/units.hpp"
#include "daemon/rules/machine.hpp"

namespace smartcash::daemon {

namespace rules {

void Machine::skip_tier(int i) {
    journal(ev::TierSkippedEvent{tier(i).name, device_of(i), why_absent(tier(i), m_devices)});
}

int Machine::next_present_below(int from, bool journal_skips) {
    for (int i = from + 1; i < tier_count(); ++i) {
        if (present(i)) return i;
        if (journal_skips) {
            skip_tier(i);
            m_s.tier_records[tier(i).name].last_outcome = "skipped";
        }
    }
    return -1;
}

int Machine::next_present_above(int from) const {
    for (int i = from - 1; i >= 0; --i)
        if (present(i)) return i;
    return -1;
}

void Machine::launch() {
    if (world())
        join_world();
    else
        start_worker();
}

void Machine::start_worker() {
    m_s.status = JobStatus::running;
    m_s.phase = WorkerPhase::spawning;
    m_s.launches += 1;
    m_s.tier_records[tier_name()].launches += 1;
    m_s.launched_at = m_now;
    m_s.pid = 0;
    m_s.progress_since_launch = false;
    m_s.launch_resume_step = m_s.last_checkpoint_step;
    m_s.recent.clear();
    m_s.kill_reason = KillReason::none;
    m_s.hang = false;
    m_s.critical_pressure_seen = false;
    m_s.stop_reason = StopReason::none;
    m_s.stop_target = -1;
    m_s.hold = StopReason::none;
    m_s.pressure_since.reset();
    m_s.soft_limit_noted = false;
    m_s.limit_hit_at = -1;
    m_s.peak_rss_launch = 0;
    m_s.shown.rss = 0;
    m_s.last_error.clear();
    m_s.message.clear();
    journal(
        ev::LaunchEvent{tier_name(), device_of(m_s.tier), m_s.launches, m_s.last_checkpoint_step});
    act(Launch{m_s.tier});
    act(SaveState{});
}

void Machine::move_to(int target, const std::string& reason, bool relaunch) {
    journal(ev::TierMoveEvent{tier_name(), tier(target).name, reason});
    m_s.tier = target;
    m_s.tier_since = m_now;
    m_s.peak_rss_at_tier = 0;
    m_s.failures_without_progress = 0;
    m_s.backoff = 0;
    if (relaunch)
        launch();
    else
        act(SaveState{});
}

void Machine::finish_job(JobStatus status, const std::string& message) {
    m_s.status = status;
    m_s.phase = WorkerPhase::idle;
    m_s.message = message;
    switch (status) {
        case JobStatus::done:
            journal(ev::JobDoneEvent{message});
            break;
        case JobStatus::failed:
            journal(ev::JobFailedEvent{message});
            break;
        case JobStatus::paused:
            journal(ev::JobPausedEvent{std::nullopt, message});
            break;
        case JobStatus::running:
        case JobStatus::stopped:
            journal(ev::JobStoppedEvent{message});
            break;
    }
    act(SaveState{});
    act(Finish{status, message});
}

void Machine::fail(const std::string& message) { finish_job(JobStatus::failed, message); }

void Machine::fail_exhausted(const std::string& last) {
    std::string msg =
        "no tier left to try (last: " + last + " at tier " + tier_name() + "). Tried:";
    bool first = true;
    for (int i = 0; i < tier_count(); ++i) {
        const TierConfig& t = tier(i);
        auto it = m_s.tier_records.find(t.name);
        std::string part;
        if (!present(i)) {
            part = t.name + " skipped (no " + to_string(t.device) + " device)";
        } else if (it == m_s.tier_records.end() || it->second.launches == 0) {
            continue;
        } else {
            const TierRecord& r = it->second;
            part = t.name + " (" + to_string(t.device) + ", limit " +
                   (t.memory_limit ? format_size(t.memory_limit) : std::string("none")) +
                   ") peaked at " + format_size(r.peak_rss) + " RSS";
            if (r.peak_device_mem) part += " / " + format_size(r.peak_device_mem) + " device";
            part += ", " + (r.last_outcome.empty() ? std::string("?") : r.last_outcome);
        }
        msg += (first ? " " : "; ") + part;
        first = false;
    }
    fail(msg);
}

void Machine::crash_retry(ExitClass cls, const std::string& what) {
    if (m_s.progress_since_launch) {
        m_s.failures_without_progress = 0;
        m_s.backoff = 0;
    } else {
        m_s.failures_without_progress += 1;
    }
    if (m_s.failures_without_progress >= sc().retry_budget) {
        std::string msg = "the worker failed " + std::to_string(m_s.failures_without_progress) +
                          " times in a row at tier " + tier_name() +
                          " without writing a checkpoint; last: " + what + " (" + to_string(cls) +
                          ")";
        if (!m_s.last_error.empty()) msg += ": " + m_s.last_error;
        fail(msg);
        return;
    }
    const double delay =
        std::min(std::max(m_s.backoff, sc().backoff_floor_seconds), sc().backoff_cap_seconds);
    m_s.backoff = std::min(delay * 2, sc().backoff_cap_seconds);
    m_s.phase = WorkerPhase::backoff;
    journal(ev::BackoffEvent{tier_name(), delay, m_s.failures_without_progress, sc().retry_budget});
    act(StartTimer{TimerKind::backoff, delay});
    act(SaveState{});
}

void Machine::request_stop(StopReason reason, double wait_seconds) {
    m_s.stop_reason = reason;
    m_s.phase = WorkerPhase::stopping;
    act(SendCommand{protocol::CheckpointAndStop{to_string(reason), std::nullopt}});
    act(StartTimer{TimerKind::stop, wait_seconds});
}

// The worker is gone and a pause/stop/shutdown is pending: do not launch again.
void Machine::hold_now() {
    m_s.phase = WorkerPhase::idle;
    const StopReason hold = m_s.hold;
    m_s.hold = StopReason::none;
    m_s.stop_reason = StopReason::none;
    if (hold == StopReason::pause) {
        m_s.status = JobStatus::paused;
        m_s.message = "paused on request";
        journal(ev::JobPausedEvent{tier_name(), std::nullopt});
        act(SaveState{});
    } else if (hold == StopReason::stop) {
        finish_job(JobStatus::stopped, "stopped on request");
    } else {
        // Shutdown keeps a paused job paused so that a restart does not resume it by surprise.
        if (m_s.status == JobStatus::paused)
            finish_job(JobStatus::paused, m_s.message.empty() ? "paused" : m_s.message);
        else
            finish_job(JobStatus::stopped, "supervisor shut down; a restart continues the job");
    }
}

void Machine::on(const StartJob&) {
    if (tier_count() == 0) {
        fail("the config has no tiers");
        return;
    }
    if (m_s.status == JobStatus::done) {
        act(Finish{JobStatus::done, m_s.message.empty() ? "the job is already done" : m_s.message});
        return;
    }
    if (m_s.tier < 0 || m_s.tier >= tier_count()) m_s.tier = 0;
    journal(ev::JobStart{tier_name(), to_string(m_s.status), m_s.launches});
    if (m_s.status == JobStatus::failed) {
        // Starting a failed job again is an explicit new attempt with a fresh retry budget.
        m_s.failures_without_progress = 0;
        m_s.message.clear();
    }
    m_s.backoff = 0;
    m_s.tier_since = m_now;
    m_s.peak_rss_at_tier = 0;
    m_s.promoted_from = -1;
    if (!present(m_s.tier)) {
        skip_tier(m_s.tier);
        int t = next_present_below(m_s.tier, /*journal_skips=*/true);
        if (t < 0) t = next_present_above(m_s.tier);
        if (t < 0) {
            fail("no tier's device is present on this machine");
            return;
        }
        move_to(t, "device not usable", /*relaunch=*/false);
    }
    if (m_s.status == JobStatus::paused) {
        m_s.phase = WorkerPhase::idle;
        act(SaveState{});
        return;
    }
    launch();
}

void Machine::on(const WorkerStarted& e) {
    m_s.pid = e.pid;
    m_s.phase = WorkerPhase::running;
    journal(ev::WorkerStartedEvent{e.pid, tier_name()});
    act(StartTimer{TimerKind::heartbeat, sc().heartbeat_timeout_seconds});
    act(SaveState{});  // records the pid, so a restarted supervisor can wait for a leftover worker
    if (m_s.hold != StopReason::none)
        request_stop(m_s.hold, m_s.hold == StopReason::shutdown ? sc().stop_grace_seconds
                                                                : sc().heartbeat_timeout_seconds);
    else if (m_s.stop_reason == StopReason::peer)
        request_stop(StopReason::peer, sc().heartbeat_timeout_seconds);
}

void Machine::on(const SpawnFailed& e) {
    m_s.phase = WorkerPhase::idle;
    m_s.last_error = e.message;
    journal(ev::SpawnFailedEvent{tier_name(), e.message, e.cannot_execute});
    if (e.cannot_execute) {
        // A missing or non-executable worker stays so: say it now instead of after the budget.
        m_s.tier_records[tier_name()].last_outcome = to_string(ExitClass::fatal);
        fail(e.message + "; not retrying (check --worker or SMARTCASH_WORKER)");
        return;
    }
    if (m_s.hold != StopReason::none) {
        hold_now();
        return;
    }
    crash_retry(ExitClass::crash, "the worker could not be started");
}

void Machine::on(const WorkerExited& e) {
    act(CancelTimer{TimerKind::heartbeat});
    act(CancelTimer{TimerKind::stop});
    act(CancelTimer{TimerKind::grace});
    const ExitClass cls = classify(e, m_s, context());
    const std::string what = describe_exit(e);
    m_s.tier_records[tier_name()].last_outcome = to_string(cls);
    ev::ExitEvent j;
    j.tier = tier_name();
    j.device = device_of(m_s.tier);
    j.pid = m_s.pid;
    j.exit_class = to_string(cls);
    j.how = what;
    j.exit_code = e.exit_code;
    j.signal = e.signal;
    j.peak_rss = m_s.peak_rss_launch;
    j.step = m_s.step;  // the last step the worker reported
    j.progress = m_s.progress_since_launch;
    j.seconds = m_now - m_s.launched_at;
    if (m_s.stop_reason != StopReason::none) j.stop_reason = to_string(m_s.stop_reason);
    if (!m_s.last_error.empty()) j.error = m_s.last_error;
    journal(std::move(j));
    m_s.pid = 0;
    m_s.phase = WorkerPhase::idle;
    m_s.shown.rss = 0;

    const StopReason held = m_s.hold;
    const std::size_t decided_from = m_actions.size();
    after_exit(cls, what);
    // With several ranks the others hear how this end was decided; the message goes before
    // this rank's join of the next round (publish_end puts it there).
    if (world()) publish_end(cls, held, decided_from);
}

void Machine::after_exit(ExitClass cls, const std::string& what) {
    const bool hold = m_s.hold != StopReason::none;
    if (!m_s.peer_failure.empty() && cls != ExitClass::done) {
        fail(m_s.peer_failure);
        return;
    }
    switch (cls) {
        case ExitClass::done:
            finish_job(JobStatus::done, "training finished at step " + std::to_string(m_s.step));
            return;
        case ExitClass::fatal: {
            std::string msg = "the worker stopped with " + what;
            if (!m_s.last_error.empty()) msg += ": " + m_s.last_error;
            msg += "; not retrying";
            fail(msg);
            return;
        }
        case ExitClass::oom:
        case ExitClass::oom_killed:
            memory_move(to_string(cls), !hold);
            break;
        case ExitClass::peer_lost:
            // Another rank is gone: no fault of this tier, and no retry spent; the next round
            // forms when that rank is back.
            if (!hold) launch();
            break;
        case ExitClass::requested:
        case ExitClass::crash:
        case ExitClass::hang:
            if (m_s.stop_reason == StopReason::peer) {
                if (!hold) launch();
            } else if (m_s.stop_reason == StopReason::memory) {
                memory_move("soft-limit", !hold);
            } else if (m_s.stop_reason == StopReason::promotion && cls == ExitClass::requested) {
                if (!hold) promoted_stop_done();
            } else if (m_s.stop_reason == StopReason::tier && m_s.stop_target >= 0) {
                m_s.promoted_from = -1;
                move_to(m_s.stop_target, "requested", !hold);
            } else if (!hold) {
                if (cls == ExitClass::requested) {
                    // A pause or stop that was withdrawn (resume) before the worker got out.
                    launch();
                } else {
                    crash_retry(cls, what);
                }
            }
            break;
    }
    if (m_s.status == JobStatus::failed) return;
    if (hold) hold_now();
}

void Machine::on(const TimerExpired& e) {
    switch (e.kind) {
        case TimerKind::heartbeat:
            m_s.hang = true;
            journal(ev::HangEvent{tier_name(), m_s.pid, sc().heartbeat_timeout_seconds});
            m_s.phase = WorkerPhase::terminating;
            m_s.kill_reason = KillReason::hang;
            act(CancelTimer{TimerKind::stop});
            act(SignalWorker{SIGTERM});
            act(StartTimer{TimerKind::grace, sc().stop_grace_seconds});
            return;
        case TimerKind::stop:
            journal(ev::StopTimeoutEvent{m_s.pid, to_string(m_s.stop_reason)});
            m_s.phase = WorkerPhase::terminating;
            m_s.kill_reason = KillReason::stop;
            act(SignalWorker{SIGTERM});
            act(StartTimer{TimerKind::grace, sc().stop_grace_seconds});
            return;
        case TimerKind::grace:
            journal(ev::KillEvent{m_s.pid, "grace period over"});
            m_s.phase = WorkerPhase::killing;
            act(SignalWorker{SIGKILL});
            return;
        case TimerKind::backoff:
            launch();
            return;
    }
}

void Machine::on(const Shutdown& e) {
    journal(ev::ShutdownEvent{e.force, to_string(m_s.phase)});
    if (m_s.phase == WorkerPhase::idle || m_s.phase == WorkerPhase::backoff ||
        m_s.phase == WorkerPhase::joining) {
        act(CancelTimer{TimerKind::backoff});
        m_s.hold = StopReason::shutdown;
        hold_now();
        return;
    }
    m_s.hold = StopReason::shutdown;
    if (e.force) {
        if (worker_alive() && m_s.phase != WorkerPhase::killing) {
            m_s.phase = WorkerPhase::killing;
            m_s.kill_reason = KillReason::stop;
            act(SignalWorker{SIGKILL});
        }
        return;
    }
    if (m_s.phase == WorkerPhase::running)
        request_stop(StopReason::shutdown, sc().stop_grace_seconds);
}

namespace {

// Which events each phase takes; an event a phase does not take changes nothing (a late timer,
// the exit of a worker already handled, a reading after the worker is gone). The handlers only
// see the events of this table. Columns: the event, with the timers by kind.
// clang-format off
enum Column { start, started, spawn_failed, exited, report, memory, heartbeat, stop, grace,
              backoff, control, shutdown, formed, peer, agent_lost, columns };

constexpr bool Y = true, n = false;
constexpr bool takes[][columns] = {
    //               start started spawn_f exited report memory heartb stop  grace backoff ctl  shutdown formed peer agent
    /* idle      */ {Y,    n,      n,      n,     Y,     n,     n,     n,    n,    n,      Y,   Y,       n,     Y,   Y},
    /* spawning  */ {Y,    Y,      Y,      Y,     Y,     n,     n,     n,    n,    n,      Y,   Y,       n,     Y,   Y},
    /* running   */ {Y,    n,      n,      Y,     Y,     Y,     Y,     n,    n,    n,      Y,   Y,       n,     Y,   Y},
    /* stopping  */ {Y,    n,      n,      Y,     Y,     Y,     Y,     Y,    n,    n,      Y,   Y,       n,     Y,   Y},
    /* terminat. */ {Y,    n,      n,      Y,     Y,     Y,     n,     n,    Y,    n,      Y,   Y,       n,     Y,   Y},
    /* killing   */ {Y,    n,      n,      Y,     Y,     Y,     n,     n,    n,    n,      Y,   Y,       n,     Y,   Y},
    /* backoff   */ {Y,    n,      n,      n,     Y,     n,     n,     n,    n,    Y,      Y,   Y,       n,     Y,   Y},
    /* joining   */ {Y,    n,      n,      n,     Y,     n,     n,     n,    n,    n,      Y,   Y,       Y,     Y,   Y},
};
// clang-format on
static_assert(std::size(takes) == static_cast<std::size_t>(WorkerPhase::joining) + 1);

Column column_of(const EventBody& body) {
    if (const auto* timer = std::get_if<TimerExpired>(&body)) {
        switch (timer->kind) {
            case TimerKind::heartbeat:
                return heartbeat;
            case TimerKind::stop:
                return stop;
            case TimerKind::grace:
                return grace;
            case TimerKind::backoff:
                return backoff;
        }
    }
    constexpr Column by_index[] = {
        start,   started,  spawn_failed, exited, report,    memory, heartbeat /* timers: above */,
        control, shutdown, formed,       peer,   agent_lost};
    static_assert(std::variant_size_v<EventBody> == std::size(by_index));
    return by_index[body.index()];
}

}  // namespace

}  // namespace rules

Decision decide(const SupervisorState& state, const Event& event, const DecideContext& context) {
    rules::Machine machine(state, event, context);
    if (rules::takes[static_cast<int>(state.phase)][rules::column_of(event.body)])
        std::visit([&](const auto& body) { machine.on(body); }, event.body);
    return machine.finish();
}

}  // namespace smartcash::daemon
