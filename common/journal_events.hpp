// The journal (RUN_DIR/events.jsonl): one struct per kind of entry the supervisor writes, its
// name as `name` (the "event" field), its fields listed once in `fields()`. decide() produces
// these, the journal writes them with to_json(), the terminal lines are made from them
// (event_text.cpp), and tools read them back with journal_event_from_json().
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>

#include "common/journal_world_events.hpp"
#include "common/protocol.hpp"

namespace smartcash::protocol {

/// The supervisor starts the job (fresh or from state.json).
struct JobStart {
    static constexpr const char* name = "start";
    std::string tier;
    std::string status;
    int launches = 0;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("status", s.status);
        v("launches", s.launches);
    }
};

/// A worker is being launched.
struct LaunchEvent {
    static constexpr const char* name = "launch";
    std::string tier;
    std::string device;
    int launch = 0;
    std::int64_t resume_step = -1;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("device", s.device);
        v("launch", s.launch);
        v("resume_step", s.resume_step);
    }
};

/// The worker process runs.
struct WorkerStartedEvent {
    static constexpr const char* name = "worker-started";
    int pid = 0;
    std::string tier;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("pid", s.pid);
        v("tier", s.tier);
    }
};

/// The worker could not be started.
struct SpawnFailedEvent {
    static constexpr const char* name = "spawn-failed";
    std::string tier;
    std::string message;
    bool cannot_execute = false;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("message", s.message);
        v("cannot_execute", s.cannot_execute);
    }
};

/// The worker's hello.
struct HelloEvent {
    static constexpr const char* name = "hello";
    std::string tier;
    std::string device;
    std::int64_t resumed_step = -1;
    std::int64_t total_steps = 0;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("device", s.device);
        v("resumed_step", s.resumed_step);
        v("total_steps", s.total_steps);
    }
};

/// The worker wrote a checkpoint.
struct CheckpointEvent {
    static constexpr const char* name = "checkpoint";
    std::string tier;
    std::string path;
    std::int64_t step = -1;
    std::string kind;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("path", s.path);
        v("step", s.step);
        v("kind", s.kind);
    }
};

/// A validation at an epoch's end.
struct EvalEvent {
    static constexpr const char* name = "eval";
    std::string tier;
    int epoch = 0;
    std::int64_t step = -1;
    std::optional<double> map50;
    std::optional<double> map50_95;
    std::map<std::string, double> layers_map50;
    std::optional<double> best_map50;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("epoch", s.epoch);
        v("step", s.step);
        v("map50", s.map50);
        v("map50_95", s.map50_95);
        v("layers_map50", s.layers_map50);
        v("best_map50", s.best_map50);
    }
};

/// An epoch boundary.
struct EpochEndEvent {
    static constexpr const char* name = "epoch_end";
    std::string tier;
    int epoch = 0;
    std::int64_t step = -1;
    std::uint64_t peak_rss = 0;
    std::uint64_t peak_device_mem = 0;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("epoch", s.epoch);
        v("step", s.step);
        v("peak_rss", s.peak_rss);
        v("peak_device_mem", s.peak_device_mem);
    }
};

/// The worker reported an allocation failure.
struct WorkerOomEvent {
    static constexpr const char* name = "worker-oom";
    std::string tier;
    std::string message;
    std::int64_t step = -1;
    std::string checkpoint;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("message", s.message);
        v("step", s.step);
        v("checkpoint", s.checkpoint);
    }
};

/// The worker reported an error.
struct WorkerErrorEvent {
    static constexpr const char* name = "worker-error";
    std::string kind;
    std::string message;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("kind", s.kind);
        v("message", s.message);
    }
};

/// The worker is leaving after a requested stop.
struct WorkerStoppingEvent {
    static constexpr const char* name = "worker-stopping";
    std::string reason;
    std::int64_t step = -1;
    std::string checkpoint;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("reason", s.reason);
        v("step", s.step);
        v("checkpoint", s.checkpoint);
    }
};

/// The worker finished training.
struct WorkerDoneEvent {
    static constexpr const char* name = "worker-done";
    std::int64_t step = -1;
    std::string reason;
    std::optional<double> best_map50;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("step", s.step);
        v("reason", s.reason);
        v("best_map50", s.best_map50);
    }
};

/// Memory reached the soft limit: checkpoint and stop, then move down.
struct SoftLimitEvent {
    static constexpr const char* name = "soft-limit";
    std::string tier;
    std::string reason;
    std::uint64_t rss = 0;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("reason", s.reason);
        v("rss", s.rss);
    }
};

/// The soft limit at the last tier: only the hard limit is left.
struct SoftLimitLastTierEvent {
    static constexpr const char* name = "soft-limit-last-tier";
    std::string tier;
    std::string reason;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("reason", s.reason);
    }
};

/// The hard limit: the watchdog kills the worker.
struct WatchdogKillEvent {
    static constexpr const char* name = "watchdog-kill";
    std::string tier;
    std::uint64_t rss = 0;
    std::uint64_t limit = 0;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("rss", s.rss);
        v("limit", s.limit);
    }
};

/// No report for the heartbeat timeout.
struct HangEvent {
    static constexpr const char* name = "hang";
    std::string tier;
    int pid = 0;
    double timeout_s = 0;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("pid", s.pid);
        v("timeout_s", s.timeout_s);
    }
};

/// A requested stop took too long.
struct StopTimeoutEvent {
    static constexpr const char* name = "stop-timeout";
    int pid = 0;
    std::string reason;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("pid", s.pid);
        v("reason", s.reason);
    }
};

/// The grace period is over: SIGKILL.
struct KillEvent {
    static constexpr const char* name = "kill";
    int pid = 0;
    std::string reason;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("pid", s.pid);
        v("reason", s.reason);
    }
};

/// The worker ended; how, and its class.
struct ExitEvent {
    static constexpr const char* name = "exit";
    std::string tier;
    std::string device;
    int pid = 0;
    std::string exit_class;
    std::string how;
    std::optional<int> exit_code;
    std::optional<int> signal;
    std::uint64_t peak_rss = 0;
    std::int64_t step = -1;
    bool progress = false;
    double seconds = 0;
    std::optional<std::string> stop_reason;
    std::optional<std::string> error;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("device", s.device);
        v("pid", s.pid);
        v("class", s.exit_class);
        v("how", s.how);
        v("exit_code", s.exit_code);
        v("signal", s.signal);
        v("peak_rss", s.peak_rss);
        v("step", s.step);
        v("progress", s.progress);
        v("seconds", s.seconds);
        v("stop_reason", s.stop_reason);
        v("error", s.error);
    }
};

/// A crash: the next launch after a delay.
struct BackoffEvent {
    static constexpr const char* name = "backoff";
    std::string tier;
    double seconds = 0;
    int failures = 0;
    int retry_budget = 0;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("seconds", s.seconds);
        v("failures", s.failures);
        v("retry_budget", s.retry_budget);
    }
};

/// A tier whose device is not usable here.
struct TierSkippedEvent {
    static constexpr const char* name = "tier-skipped";
    std::string tier;
    std::string device;
    std::string reason;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("device", s.device);
        v("reason", s.reason);
    }
};

/// The job moves to another tier.
struct TierMoveEvent {
    static constexpr const char* name = "tier-move";
    std::string from;
    std::string to;
    std::string reason;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("from", s.from);
        v("to", s.to);
        v("reason", s.reason);
    }
};

/// Trying the tier above again.
struct PromotionEvent {
    static constexpr const char* name = "promotion";
    std::string from;
    std::string to;
    double stable_s = 0;
    std::uint64_t peak_rss = 0;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("from", s.from);
        v("to", s.to);
        v("stable_s", s.stable_s);
        v("peak_rss", s.peak_rss);
    }
};

/// The promotion's stop is done; launching one tier up.
struct PromotedEvent {
    static constexpr const char* name = "promoted";
    std::string from;
    std::string to;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("from", s.from);
        v("to", s.to);
    }
};

/// The promoted tier did not hold: back down, a longer wait.
struct PromotionFailedEvent {
    static constexpr const char* name = "promotion-failed";
    std::string tier;
    std::string back_to;
    std::string reason;
    double next_wait_s = 0;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("back_to", s.back_to);
        v("reason", s.reason);
        v("next_wait_s", s.next_wait_s);
    }
};

/// The promoted tier held for a stable stretch.
struct PromotionKeptEvent {
    static constexpr const char* name = "promotion-kept";
    std::string tier;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
    }
};

/// A control request that changes the job.
struct ControlEvent {
    static constexpr const char* name = "control";
    std::string cmd;
    std::optional<std::string> tier;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("cmd", s.cmd);
        v("tier", s.tier);
    }
};

/// The supervisor was signalled.
struct ShutdownEvent {
    static constexpr const char* name = "shutdown";
    bool force = false;
    std::string phase;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("force", s.force);
        v("phase", s.phase);
    }
};

/// The job ended for this supervisor: done, failed, or stopped before it was done; `message`
/// says why, for people.
template <const char* Name>
struct JobEndEvent {
    static constexpr const char* name = Name;
    std::string message;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("message", s.message);
    }
};
inline constexpr char job_done[] = "done";
inline constexpr char job_failed[] = "failed";
inline constexpr char job_stopped[] = "stopped";
using JobDoneEvent = JobEndEvent<job_done>;
using JobFailedEvent = JobEndEvent<job_failed>;
using JobStoppedEvent = JobEndEvent<job_stopped>;

/// The job is paused (on request, or still paused at a shutdown).
struct JobPausedEvent {
    static constexpr const char* name = "paused";
    std::optional<std::string> tier;
    std::optional<std::string> message;
    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier);
        v("message", s.message);
    }
};

/// Any journal entry.
using JournalEvent =
    std::variant<JobStart, LaunchEvent, WorkerStartedEvent, SpawnFailedEvent, HelloEvent,
                 CheckpointEvent, EvalEvent, EpochEndEvent, WorkerOomEvent, WorkerErrorEvent,
                 WorkerStoppingEvent, WorkerDoneEvent, SoftLimitEvent, SoftLimitLastTierEvent,
                 WatchdogKillEvent, HangEvent, StopTimeoutEvent, KillEvent, ExitEvent, BackoffEvent,
                 TierSkippedEvent, TierMoveEvent, PromotionEvent, PromotedEvent,
                 PromotionFailedEvent, PromotionKeptEvent, ControlEvent, ShutdownEvent,
                 JobDoneEvent, JobFailedEvent, JobStoppedEvent, JobPausedEvent, WorldJoinEvent,
                 WorldFormedEvent, PeerEndedEvent, WorldPublishEvent, WorldAgentEvent>;

/// The entry as a JSON object: "event" and its fields (the journal adds the time, "t").
Json to_json(const JournalEvent& event);

/// Reads an entry written by to_json(); nullopt (and *error) for an unknown "event".
std::optional<JournalEvent> journal_event_from_json(const Json& entry, std::string* error);

/// The entry's name ("tier-move", "exit", ...).
const char* name_of(const JournalEvent& event);

}  // namespace smartcash::protocol
