#include "daemon/shell/status.hpp"

#include <algorithm>

namespace smartcash::daemon {

namespace {

// The at-a-glance figures: the tier's place, epochs and phases from the config, and what the
// worker's latest progress report says while it runs.
void add_glance(protocol::StatusView& v, const SupervisorState& state, const Config& config,
                const LiveProgress& progress) {
    for (const auto& t : config.tiers) v.tier_order.push_back(t.name);
    if (state.tier >= 0 && state.tier < static_cast<int>(config.tiers.size()))
        v.tier_index = state.tier;
    const auto& training = config.training;
    const int epochs = training.phase1.epochs + training.phase2.epochs;
    v.epochs = epochs;
    v.phases = (training.phase1.epochs > 0 ? 1 : 0) + (training.phase2.epochs > 0 ? 1 : 0);
    const auto& last = progress.last();
    if (!last) return;
    v.training_phase = last->phase;
    v.phase_epochs = last->phase == 1 ? training.phase1.epochs : training.phase2.epochs;
    const std::int64_t total = last->total_steps.value_or(0);
    if (epochs > 0 && total > 0 && total % epochs == 0 && last->step && last->epoch) {
        const std::int64_t per_epoch = total / epochs;
        v.steps_per_epoch = per_epoch;
        const std::int64_t in_epoch = *last->step - std::int64_t{*last->epoch} * per_epoch;
        v.step_in_epoch = std::max<std::int64_t>(0, std::min(in_epoch, per_epoch));
    }
    if (state.phase != WorkerPhase::running) return;
    v.images_per_s = last->images_per_s;
    v.eta_s = progress.eta_s();
}

}  // namespace

protocol::StatusView status_view(const SupervisorState& state, const Config& config,
                                 const std::string& run_dir, const LiveProgress& progress) {
    // What state.json holds, then what only a running supervisor knows.
    protocol::StatusView v = status_view(state_record(state, config), run_dir);
    const bool tier_ok = state.tier >= 0 && state.tier < static_cast<int>(config.tiers.size());
    const TierConfig* tier =
        tier_ok ? &config.tiers[static_cast<std::size_t>(state.tier)] : nullptr;
    v.phase = to_string(state.phase);
    v.tier_device = tier ? to_string(tier->device) : "";
    v.device = state.shown.device;
    v.memory_limit = tier ? tier->memory_limit : 0;
    v.loss = state.shown.loss;
    v.rss = state.shown.rss;
    v.device_mem = state.shown.device_mem;
    v.pid = state.pid;
    v.supervisor_running = true;
    add_glance(v, state, config, progress);
    return v;
}

protocol::StatusView status_view(const StateRecord& r, const std::string& run_dir) {
    protocol::StatusView v;
    static_cast<protocol::JobRecord&>(v) = r;
    v.state = r.status;
    v.phase = to_string(WorkerPhase::idle);
    v.pid = 0;
    v.run_dir = run_dir;
    v.supervisor_running = false;
    if (!r.device.empty()) v.device = r.device;
    v.tiers = r.tiers;
    return v;
}

}  // namespace smartcash::daemon
