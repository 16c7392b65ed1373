// How one worker end is classified (docs/exit-codes.md's table) and the names of the supervisor's
// states and classes: the pure rules decide() applies, kept apart from its state machine.
#include <csignal>
#include <cstring>

#include "common/exit_codes.hpp"
#include "common/macos_memory.hpp"
#include "daemon/rules/decision.hpp"

namespace smartcash::daemon {

const char* to_string(ExitClass c) {
    switch (c) {
        case ExitClass::done:
            return "done";
        case ExitClass::oom:
            return "oom";
        case ExitClass::oom_killed:
            return "oom-killed";
        case ExitClass::requested:
            return "requested";
        case ExitClass::fatal:
            return "fatal";
        case ExitClass::crash:
            return "crash";
        case ExitClass::hang:
            return "hang";
        case ExitClass::peer_lost:
            return "peer-lost";
    }
    return "unknown";
}

const char* to_string(JobStatus s) {
    switch (s) {
        case JobStatus::running:
            return "running";
        case JobStatus::paused:
            return "paused";
        case JobStatus::stopped:
            return "stopped";
        case JobStatus::done:
            return "done";
        case JobStatus::failed:
            return "failed";
    }
    return "unknown";
}

std::optional<JobStatus> job_status_from_string(const std::string& s) {
    for (JobStatus j : {JobStatus::running, JobStatus::paused, JobStatus::stopped, JobStatus::done,
                        JobStatus::failed})
        if (s == to_string(j)) return j;
    return std::nullopt;
}

const char* to_string(StopReason r) {
    switch (r) {
        case StopReason::none:
            return "none";
        case StopReason::memory:
            return "memory";
        case StopReason::promotion:
            return "promotion";
        case StopReason::pause:
            return "pause";
        case StopReason::stop:
            return "stop";
        case StopReason::tier:
            return "tier";
        case StopReason::shutdown:
            return "shutdown";
        case StopReason::peer:
            return "peer";
    }
    return "unknown";
}

const char* to_string(WorkerPhase p) {
    switch (p) {
        case WorkerPhase::idle:
            return "idle";
        case WorkerPhase::spawning:
            return "spawning";
        case WorkerPhase::running:
            return "running";
        case WorkerPhase::stopping:
            return "stopping";
        case WorkerPhase::terminating:
            return "terminating";
        case WorkerPhase::killing:
            return "killing";
        case WorkerPhase::backoff:
            return "backoff";
        case WorkerPhase::joining:
            return "joining";
    }
    return "unknown";
}

const char* to_string(KillReason r) {
    switch (r) {
        case KillReason::none:
            return "none";
        case KillReason::memory:
            return "memory";
        case KillReason::hang:
            return "hang";
        case KillReason::stop:
            return "stop";
    }
    return "unknown";
}

static std::string signal_name(int sig) {
    switch (sig) {
        case SIGKILL:
            return "SIGKILL";
        case SIGTERM:
            return "SIGTERM";
        case SIGSEGV:
            return "SIGSEGV";
        case SIGABRT:
            return "SIGABRT";
        case SIGBUS:
            return "SIGBUS";
        case SIGINT:
            return "SIGINT";
        case SIGILL:
            return "SIGILL";
        case SIGFPE:
            return "SIGFPE";
        case SIGPIPE:
            return "SIGPIPE";
        default:
            return "signal " + std::to_string(sig);
    }
}

std::string describe_exit(const WorkerExited& exited) {
    if (exited.exit_code)
        return "exit code " + std::to_string(*exited.exit_code) + " (" +
               exit_code::name(*exited.exit_code) + ")";
    if (exited.signal) return "killed by " + signal_name(*exited.signal);
    return "ended for an unknown reason";
}

bool tier_present(const TierConfig& tier, const DevicePresence& devices) {
    switch (tier.device) {
        case Device::auto_:
        case Device::cpu:
            return true;
        case Device::cuda:
            return devices.cuda;
        case Device::mps:
            return devices.mps;
    }
    return false;
}

std::string why_absent(const TierConfig& tier, const DevicePresence& devices) {
    const std::string& why = tier.device == Device::cuda  ? devices.cuda_why
                             : tier.device == Device::mps ? devices.mps_why
                                                          : std::string();
    return std::string("device ") + to_string(tier.device) + " not usable" +
           (why.empty() ? std::string() : ": " + why);
}

bool near_tier_limit(std::uint64_t rss, const TierConfig& tier, const SupervisorConfig& sc) {
    return tier.memory_limit > 0 &&
           static_cast<double>(rss) >=
               sc.soft_limit_fraction * static_cast<double>(tier.memory_limit);
}

bool system_memory_short(const std::optional<std::uint64_t>& available,
                         const SupervisorConfig& sc) {
    return available && *available < sc.min_available;
}

bool pressure_high(const std::optional<double>& pressure, const SupervisorConfig& sc) {
    return pressure && *pressure >= sc.pressure_threshold;
}

bool critical_pressure(const std::optional<double>& pressure) {
    return pressure && *pressure >= macos::critical_pressure_percent;
}

bool critical_pressure_in_launch(const SupervisorState& state, const WorkerExited& exited) {
    return state.critical_pressure_seen || critical_pressure(exited.pressure_after);
}

bool memory_short_near_end(const SupervisorState& state, const DecideContext& context) {
    const Config& config = *context.config;
    const bool tier_ok = state.tier >= 0 && state.tier < static_cast<int>(config.tiers.size());
    const SupervisorConfig& sc = config.supervisor;
    for (const RecentSample& r : state.recent) {
        if (tier_ok &&
            near_tier_limit(r.rss, config.tiers[static_cast<std::size_t>(state.tier)], sc))
            return true;
        if (system_memory_short(r.available, sc) || pressure_high(r.pressure, sc)) return true;
    }
    return false;
}

ExitClass classify(const WorkerExited& exited, const SupervisorState& state,
                   const DecideContext& context) {
    // The supervisor's own signals are classified by why it sent them, whatever memory did.
    const bool asked_to_stop =
        state.stop_reason != StopReason::none || state.hold != StopReason::none;
    if (exited.exit_code) {
        const int code = *exited.exit_code;
        if (code == exit_code::done) return ExitClass::done;
        if (code == exit_code::oom) return ExitClass::oom;
        if (code == exit_code::config_error || code == exit_code::data_error ||
            code == exit_code::usage || code == exit_code::diverged)
            return ExitClass::fatal;
        // A requested stop only counts as one when the supervisor asked for it; a worker that
        // stopped by itself (someone signalled it directly) is restarted like a crash.
        if (code == exit_code::requested_stop && asked_to_stop) return ExitClass::requested;
        if (context.world_size > 1) {
            // Several ranks: a worker also stops when another rank's worker stopped (they agree
            // at step boundaries), or when a collective lost another rank.
            if (code == exit_code::peer_lost) return ExitClass::peer_lost;
            if (code == exit_code::requested_stop) return ExitClass::requested;
        }
        return state.hang ? ExitClass::hang : ExitClass::crash;
    }
    switch (state.kill_reason) {
        case KillReason::memory:
            return ExitClass::oom_killed;
        case KillReason::hang:
            return ExitClass::hang;
        case KillReason::stop:
            return ExitClass::requested;
        case KillReason::none:
            break;
    }
    if (exited.signal && *exited.signal == SIGKILL &&
        (exited.cgroup_oom_kill || critical_pressure_in_launch(state, exited) ||
         memory_short_near_end(state, context)))
        return ExitClass::oom_killed;
    return state.hang ? ExitClass::hang : ExitClass::crash;
}

}  // namespace smartcash::daemon
