// What the worker's reports change: the figures the job shows, the checkpoint to resume from
// (and whether this launch made progress), the promotion trial's start, and the journal.
#include <algorithm>

#include "daemon/rules/machine.hpp"

namespace smartcash::daemon::rules {

void Machine::on(const Report& e) {
    // Every report is a heartbeat.
    if (m_s.phase == WorkerPhase::running || m_s.phase == WorkerPhase::stopping)
        act(StartTimer{TimerKind::heartbeat, sc().heartbeat_timeout_seconds});
    std::visit([this](const auto& r) { on_report(r); }, e.message);
}

void Machine::on_report(const protocol::Hello& r) {
    if (m_s.promoted_from >= 0 && m_s.promoted_at < 0) m_s.promoted_at = m_now;
    m_s.shown.device = r.device;
    m_s.step = r.resumed_step;
    m_s.launch_resume_step = m_s.step;
    m_s.total_steps = r.total_steps;
    m_s.epoch = r.epoch;
    journal(ev::HelloEvent{tier_name(), m_s.shown.device, m_s.step, m_s.total_steps});
}

void Machine::on_report(const protocol::Progress& r) {
    m_s.step = r.step.value_or(m_s.step);
    m_s.total_steps = r.total_steps.value_or(m_s.total_steps);
    m_s.epoch = r.epoch.value_or(m_s.epoch);
    if (r.loss) m_s.shown.loss = r.loss;
    m_s.shown.device_mem = r.device_mem;
    TierRecord& record = m_s.tier_records[tier_name()];
    record.peak_device_mem = std::max(record.peak_device_mem, r.device_mem);
}

void Machine::on_report(const protocol::CheckpointWritten& r) {
    m_s.last_checkpoint = r.path;
    m_s.last_checkpoint_step = r.step;
    m_s.step = std::max(m_s.step, r.step);  // a checkpoint of step N: N steps are done
    // A stop checkpoint at the step the launch resumed from is no progress: a worker that
    // hangs but answers SIGTERM must not reset the retry budget forever.
    if (m_s.last_checkpoint_step > m_s.launch_resume_step) m_s.progress_since_launch = true;
    journal(
        ev::CheckpointEvent{tier_name(), m_s.last_checkpoint, m_s.last_checkpoint_step, r.kind});
    act(SaveState{});
}

void Machine::on_report(const protocol::Eval& r) {
    if (r.map50) m_s.shown.map50 = r.map50;
    if (r.map50_95) m_s.shown.map50_95 = r.map50_95;
    std::map<std::string, double> layers;
    if (r.layers) {
        m_s.shown.layer_map50.clear();
        for (const auto& [name, scores] : *r.layers) {
            if (!scores.map50) continue;
            m_s.shown.layer_map50[name] = *scores.map50;
            layers[name] = *scores.map50;
        }
    }
    journal(ev::EvalEvent{tier_name(), r.epoch.value_or(m_s.epoch), r.step.value_or(m_s.step),
                          m_s.shown.map50, r.map50_95, layers, r.best_map50});
    act(SaveState{});
}

void Machine::on_report(const protocol::EpochEnd& r) {
    m_s.epoch = r.epoch.value_or(m_s.epoch);
    m_s.step = r.step.value_or(m_s.step);
    TierRecord& record = m_s.tier_records[tier_name()];
    record.peak_device_mem = std::max(record.peak_device_mem, r.peak_device_mem);
    journal(ev::EpochEndEvent{tier_name(), m_s.epoch, m_s.step, m_s.peak_rss_at_tier,
                              record.peak_device_mem});
    maybe_promote();
}

void Machine::on_report(const protocol::Oom& r) {
    m_s.last_error = r.message;
    journal(ev::WorkerOomEvent{tier_name(), m_s.last_error, r.step, r.checkpoint});
}

void Machine::on_report(const protocol::WorkerError& r) {
    m_s.last_error = r.kind + " error: " + r.message;
    journal(ev::WorkerErrorEvent{r.kind, r.message});
}

void Machine::on_report(const protocol::Stopping& r) {
    journal(ev::WorkerStoppingEvent{r.reason, r.step, r.checkpoint});
}

void Machine::on_report(const protocol::Done& r) {
    m_s.step = r.step.value_or(m_s.step);
    if (r.best_map50) m_s.shown.map50 = r.best_map50;
    journal(ev::WorkerDoneEvent{m_s.step, r.reason, m_s.shown.map50});
}

// The worker logs what it rejected and falls back to an older checkpoint by itself.
void Machine::on_report(const protocol::CheckpointRejected&) {}

}  // namespace smartcash::daemon::rules
