#include "daemon/shell/status.hpp"

namespace smartcash::daemon {

protocol::StatusView status_view(const SupervisorState& state, const Config& config,
                                 const std::string& run_dir) {
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
    v.tiers = r.tiers;
    return v;
}

}  // namespace smartcash::daemon
