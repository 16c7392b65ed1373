// What the control socket's requests do to the job: stop, pause, resume, checkpoint, tier.
#include "common/control.hpp"

#include "daemon/rules/machine.hpp"

namespace smartcash::daemon::rules {

void Machine::on(const ControlRequest& e) {
    if (m_s.status == JobStatus::done || m_s.status == JobStatus::failed ||
        m_s.status == JobStatus::stopped) {
        if (m_s.phase == WorkerPhase::idle) {
            reject(std::string("the job is ") + to_string(m_s.status));
            return;
        }
    }
    const WorkerPhase phase = m_s.phase;
    switch (e.command) {
        case ControlCommand::stop:
        case ControlCommand::pause: {
            const StopReason reason =
                e.command == ControlCommand::stop ? StopReason::stop : StopReason::pause;
            if (reason == StopReason::pause && world()) {
                // A paused rank would hold every other rank in the next round, with no way
                // for their supervisors to resume it.
                reject("pause is not available with several ranks; stop the job instead");
                return;
            }
            if (reason == StopReason::pause && m_s.status == JobStatus::paused) return;
            journal(ev::ControlEvent{to_string(reason), std::nullopt});
            if (phase == WorkerPhase::backoff || phase == WorkerPhase::idle) {
                act(CancelTimer{TimerKind::backoff});
                m_s.hold = reason;
                hold_now();
                return;
            }
            // stop wins over pause; neither undoes a shutdown
            if (m_s.hold != StopReason::shutdown &&
                !(m_s.hold == StopReason::stop && reason == StopReason::pause))
                m_s.hold = reason;
            if (phase == WorkerPhase::running) request_stop(reason, sc().heartbeat_timeout_seconds);
            return;
        }
        case ControlCommand::resume:
            if (m_s.hold == StopReason::pause) {
                m_s.hold = StopReason::none;
                journal(ev::ControlEvent{protocol::control_cmd::resume, std::nullopt});
                return;
            }
            if (m_s.status != JobStatus::paused || phase != WorkerPhase::idle) {
                reject("the job is not paused");
                return;
            }
            journal(ev::ControlEvent{protocol::control_cmd::resume, std::nullopt});
            m_s.tier_since = m_now;
            launch();
            return;
        case ControlCommand::checkpoint:
            if (phase != WorkerPhase::running) {
                reject("no worker is running");
                return;
            }
            act(SendCommand{protocol::CheckpointCommand{"requested"}});
            return;
        case ControlCommand::tier: {
            int target = -1;
            for (int i = 0; i < tier_count(); ++i)
                if (tier(i).name == e.tier) target = i;
            if (target < 0) {
                reject("no tier named \"" + e.tier + "\"");
                return;
            }
            if (!present(target)) {
                reject("tier " + e.tier + " needs a " + to_string(tier(target).device) +
                       " device, which this machine does not have");
                return;
            }
            if (target == m_s.tier && m_s.stop_reason != StopReason::tier) return;
            if (world() && target < m_s.tier) {
                reject(
                    "with several ranks the job runs at the lowest tier any rank asks for: "
                    "a tier above the current one cannot be chosen on one rank");
                return;
            }
            journal(ev::ControlEvent{protocol::control_cmd::tier, e.tier});
            m_s.promoted_from = -1;
            if (phase == WorkerPhase::running) {
                m_s.stop_target = target;
                request_stop(StopReason::tier, sc().heartbeat_timeout_seconds);
            } else if (phase == WorkerPhase::backoff) {
                act(CancelTimer{TimerKind::backoff});
                move_to(target, "requested", /*relaunch=*/true);
            } else if (phase == WorkerPhase::idle) {
                move_to(target, "requested", /*relaunch=*/false);
            } else if (phase == WorkerPhase::joining) {
                reject("waiting for the other ranks; try again when the round has formed");
            } else {
                reject("the worker is busy stopping; try again when it has stopped");
            }
            return;
        }
    }
}

}  // namespace smartcash::daemon::rules
