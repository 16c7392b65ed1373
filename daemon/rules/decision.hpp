// The supervisor's tier state machine: one pure function from (state, event) to (state, actions).
// The rules live in this folder, one idea a file: machine.hpp (the machine's parts), decision.cpp
// (launches, exits, timers, shutdown), reports.cpp (what the worker's reports change),
// memory.cpp (the watchdog and the soft limit), promotion.cpp (moving back up), control.cpp
// (control requests), classify.cpp (how a worker's end is classified, and the names).
//
// Nothing in here does I/O or reads a clock: time arrives inside each event, the machine's
// devices and the config arrive in the context, and everything the supervisor should do comes
// back as a list of actions that the shell (supervisor.cpp) performs. This is where a worker's
// end is classified and where the next tier is chosen; docs/supervisor.md describes the rules.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/commands.hpp"
#include "common/config.hpp"
#include "common/control.hpp"
#include "common/journal_events.hpp"
#include "common/protocol.hpp"
#include "common/reports.hpp"

namespace smartcash::daemon {

using Json = protocol::Json;

/// Which devices the worker can use (devices.hpp asks it). `auto` and `cpu` tiers are always
/// present (auto picks the best one).
struct DevicePresence {
    bool cuda = false;
    bool mps = false;
    std::string cuda_why;  ///< why not, when not
    std::string mps_why;
};

/// The job as a whole, as persisted in state.json.
enum class JobStatus { running, paused, stopped, done, failed };

/// What the supervisor is doing with the worker right now (not persisted).
enum class WorkerPhase {
    idle,         ///< no worker and nothing pending (paused, or finished)
    spawning,     ///< a Launch was issued; waiting for WorkerStarted or SpawnFailed
    running,      ///< worker alive
    stopping,     ///< checkpoint_and_stop sent; waiting for it to exit
    terminating,  ///< SIGTERM sent; waiting out the grace period
    killing,      ///< SIGKILL sent; waiting for the exit
    backoff,      ///< between a crash and the next launch
    joining,      ///< several ranks: waiting for every rank to join the next round (JoinWorld)
};

/// The class of one worker end (docs/exit-codes.md, the table of worker ends).
/// peer_lost: a collective failed because another rank is gone (several ranks only).
enum class ExitClass { done, oom, oom_killed, requested, fatal, crash, hang, peer_lost };

/// Why the supervisor asked the worker to checkpoint and stop.
/// peer: another rank's worker ended, so every rank's worker stops and all launch again together.
enum class StopReason { none, memory, promotion, pause, stop, tier, shutdown, peer };

enum class TimerKind { heartbeat, stop, grace, backoff };

enum class ControlCommand { stop, pause, resume, checkpoint, tier };

/// What one tier did during this job (peak RSS and device memory, launches, the class of its
/// last end); kept per tier name in state.json and shown by status.
using TierRecord = protocol::TierSummary;

/// One memory reading kept for judging a SIGKILL: only the readings just before a kill say
/// whether memory was what killed the worker.
struct RecentSample {
    double at = 0;
    std::uint64_t rss = 0;
    std::optional<std::uint64_t> available;
    std::optional<double> pressure;
};

/// Why the supervisor itself signalled the worker (none: it did not).
enum class KillReason { none, memory, hang, stop };

/// The latest figures the worker and the memory probe gave, for status and the journal.
struct ShownFigures {
    std::optional<double> loss;
    std::optional<double> map50;
    std::optional<double> map50_95;
    std::map<std::string, double> layer_map50;  ///< mAP@0.5 per detection layer, last eval
    std::uint64_t rss = 0;
    std::uint64_t device_mem = 0;
    std::optional<std::uint64_t> available;
    std::string device;  ///< as the worker's hello named it
};

struct SupervisorState {
    // --- persisted (state.json) ---
    JobStatus status = JobStatus::running;
    int tier = 0;                       ///< index into Config::tiers
    int launches = 0;                   ///< every launch of this job, all tiers
    int failures_without_progress = 0;  ///< consecutive crashed launches with no new checkpoint
    std::string last_checkpoint;        ///< path of the newest checkpoint the worker reported
    std::int64_t last_checkpoint_step = -1;
    std::string message;  ///< why the job is failed / paused / stopped, for people
    std::map<std::string, TierRecord> tier_records;
    double promotion_wait = 0;  ///< current stable time before a promotion (0: stable_seconds)

    // --- runtime only ---
    WorkerPhase phase = WorkerPhase::idle;
    int pid = 0;
    double backoff = 0;  ///< next crash backoff (0: the floor)
    double launched_at = 0;
    double tier_since = 0;               ///< when the current tier was entered
    std::uint64_t peak_rss_at_tier = 0;  ///< since tier_since; decides promotion headroom
    std::uint64_t peak_rss_launch = 0;   ///< during the current launch
    /// The checkpoint step this launch resumed from (the worker's hello says it exactly); only a
    /// checkpoint past it is progress.
    std::int64_t launch_resume_step = -1;
    bool progress_since_launch = false;
    /// Readings of the last seconds of this launch (see RecentSample).
    std::vector<RecentSample> recent;
    StopReason stop_reason = StopReason::none;  ///< the reason sent with checkpoint_and_stop
    int stop_target = -1;  ///< tier to launch after a requested stop (memory, promotion, tier)
    /// What to do once the worker is gone instead of launching again: none, pause, stop or
    /// shutdown. Kept apart from stop_reason so a pending tier move is still recorded.
    StopReason hold = StopReason::none;
    /// The supervisor's own signals to this launch: the watchdog's memory kill, the hang
    /// timeout, or the end of a requested stop's grace (and a forced shutdown).
    KillReason kill_reason = KillReason::none;
    bool hang = false;  ///< the heartbeat ran out for this launch
    /// A reading during this launch had memory pressure at critical (macOS's level 4): the
    /// system was killing for memory, so a SIGKILL from outside is blamed on memory however
    /// long ago the reading was (see critical_pressure()).
    bool critical_pressure_seen = false;
    std::optional<double> pressure_since;
    bool soft_limit_noted = false;  ///< "soft limit at the last tier" journaled for this launch
    int promoted_from = -1;         ///< tier we came up from, while a promotion is on trial
    /// When the promoted tier's worker said hello (-1: not yet). The trial runs from there, so the
    /// time a worker takes to start (loading, dataset) does not count as holding.
    double promoted_at = -1;
    /// When this launch hit the soft or hard memory limit (-1: it did not). A promotion on trial
    /// is judged by when its tier failed, not by when the worker finally got out.
    double limit_hit_at = -1;
    std::string last_error;  ///< message of the worker's last error/oom report

    // --- the job's progress as the worker reported it (step decides promotion's timing) ---
    std::int64_t step = -1;
    std::int64_t total_steps = 0;
    int epoch = 0;

    /// Several ranks: another rank failed the job; it fails here once the worker is gone.
    std::string peer_failure;
    std::int64_t world_round = -1;  ///< the round this rank's worker was launched in

    /// Figures kept for people only (status, the summary, state.json); no rule reads them.
    ShownFigures shown;
};

// ---- events ----

/// The supervisor started (fresh or from state.json). Launches unless done or paused.
struct StartJob {};
struct WorkerStarted {
    int pid = 0;
};
/// The worker could not be started (exec failed, pipes could not be made...).
struct SpawnFailed {
    std::string message;
    /// The program itself cannot be run (missing, not executable): a fatal end, not a retry.
    bool cannot_execute = false;
};
struct WorkerExited {
    std::optional<int> exit_code;  ///< set when it exited
    std::optional<int> signal;     ///< set when a signal ended it
    bool cgroup_oom_kill = false;  ///< the kernel's cgroup oom killer fired during the launch
    /// The system's memory pressure read once more right after the end was noticed (SIGCHLD),
    /// before it is classified: a spike shorter than one poll that made jetsam kill the worker
    /// is still at critical then.
    std::optional<double> pressure_after;
};
/// One report from the worker's report channel.
struct Report {
    protocol::WorkerReport message;
};
struct MemorySample {
    std::uint64_t rss = 0;  ///< worker process tree
    std::optional<std::uint64_t> available;
    std::optional<double> pressure;  ///< PSI some avg10, percent
};
struct TimerExpired {
    TimerKind kind = TimerKind::heartbeat;
};
struct ControlRequest {
    ControlCommand command = ControlCommand::stop;
    std::string tier;  ///< for ControlCommand::tier
};
/// SIGINT/SIGTERM/SIGQUIT to the supervisor. A second one (force) kills at once.
struct Shutdown {
    bool force = false;
};

/// Several ranks: every rank joined the round; launch at `tier` (the lowest any rank asked for).
struct WorldFormed {
    std::int64_t round = 0;
    int tier = 0;
    std::vector<int> tiers;  ///< each rank's proposal, by rank
};
/// Several ranks: another rank's part of the round ended (protocol::world::PeerEnded).
struct PeerEnded {
    std::int64_t round = 0;
    int rank = 0;
    std::string kind;  ///< relaunch, stop, failed
    std::string exit_class;
    int tier = 0;
    std::int64_t step = -1;
    std::string detail;
};
/// Several ranks: the world agent is gone; the shell starts another one.
struct WorldAgentLost {
    std::string message;
};

using EventBody =
    std::variant<StartJob, WorkerStarted, SpawnFailed, WorkerExited, Report, MemorySample,
                 TimerExpired, ControlRequest, Shutdown, WorldFormed, PeerEnded, WorldAgentLost>;

struct Event {
    double now = 0;  ///< monotonic seconds
    EventBody body;
};

// ---- actions ----

struct Launch {
    int tier = 0;
};
struct SendCommand {
    protocol::WorkerCommand command;
};
struct SignalWorker {
    int signal = 0;  ///< SIGTERM or SIGKILL, to the worker's process group
};
/// (Re)arms the timer of this kind; an armed one is replaced.
struct StartTimer {
    TimerKind kind = TimerKind::heartbeat;
    double seconds = 0;
};
struct CancelTimer {
    TimerKind kind = TimerKind::heartbeat;
};
/// One journal line; the shell adds the time.
struct JournalEntry {
    protocol::JournalEvent entry;
};
struct SaveState {};
/// The job is over for this supervisor: done, failed, stopped, or paused at shutdown.
struct Finish {
    JobStatus status = JobStatus::done;
    std::string message;
};

/// Several ranks: ask the world agent to join the next round with this tier (index).
struct JoinWorld {
    int tier = 0;
};
/// Several ranks: tell the others how this rank's part of the round ended
/// (protocol::world::Publish; kind relaunch, stop or failed).
struct PublishEnd {
    std::string kind;
    std::string exit_class;
    int tier = 0;
    std::int64_t step = -1;
    std::string detail;
};

using Action = std::variant<Launch, SendCommand, SignalWorker, StartTimer, CancelTimer,
                            JournalEntry, SaveState, Finish, JoinWorld, PublishEnd>;

struct Decision {
    SupervisorState state;
    std::vector<Action> actions;
    bool ok = true;     ///< for a ControlRequest: accepted?
    std::string error;  ///< for a ControlRequest: why not
};

struct DecideContext {
    const Config* config = nullptr;
    DevicePresence devices;
    /// Data-parallel ranks (docs/distributed.md): with more than one, every launch waits for the
    /// round to form, every worker end is published to the other ranks, and there is no pause
    /// and no promotion.
    int world_size = 1;
    int rank = 0;
};

/// The state machine. Pure: the same inputs always give the same decision.
Decision decide(const SupervisorState& state, const Event& event, const DecideContext& context);

/// Classifies one worker end given what the supervisor knew about the launch.
ExitClass classify(const WorkerExited& exited, const SupervisorState& state,
                   const DecideContext& context);

/// Whether `rss` is at or above the soft fraction of the tier's memory limit (never, without one).
bool near_tier_limit(std::uint64_t rss, const TierConfig& tier, const SupervisorConfig& sc);

/// Whether the system's available memory is below min_available (unknown: no).
bool system_memory_short(const std::optional<std::uint64_t>& available, const SupervisorConfig& sc);
/// Whether memory pressure is at or above its threshold (unknown: no).
bool pressure_high(const std::optional<double>& pressure, const SupervisorConfig& sc);

/// Whether a pressure reading is at the critical level: 100 on the percent scale, where the
/// macOS probe puts kern.memorystatus_vm_pressure_level 4 (common/macos_memory.hpp). Linux's PSI
/// "some avg10" reaches it only when tasks stalled on memory for the whole last 10 s. Fixed,
/// whatever pressure_threshold says.
bool critical_pressure(const std::optional<double>& pressure);

/// Whether this launch met critical pressure: any reading during it (latched in the state) or
/// the one taken right after its end. A SIGKILL from outside is then the system's memory killer
/// (jetsam on macOS), however short the spike or long ago the reading.
bool critical_pressure_in_launch(const SupervisorState& state, const WorkerExited& exited);

/// Whether the readings just before the end show memory at its end: the worker's RSS at the
/// soft fraction of its tier's limit, the system below min_available, or pressure at its
/// threshold.
bool memory_short_near_end(const SupervisorState& state, const DecideContext& context);

/// Whether a tier's device exists on this machine.
bool tier_present(const TierConfig& tier, const DevicePresence& devices);
/// Why a tier is not present ("device cuda not usable: this LibTorch was built without CUDA").
std::string why_absent(const TierConfig& tier, const DevicePresence& devices);

/// "oom-killed", "done", ...
const char* to_string(ExitClass c);
const char* to_string(JobStatus s);
const char* to_string(StopReason r);
const char* to_string(WorkerPhase p);
const char* to_string(KillReason r);
std::optional<JobStatus> job_status_from_string(const std::string& s);

/// "exit code 75 (oom)", "signal 9 (SIGKILL)".
std::string describe_exit(const WorkerExited& exited);

}  // namespace smartcash::daemon
