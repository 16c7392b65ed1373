// Client <-> supervisor on RUN_DIR/control.sock: {"cmd": ...} -> {"ok": true|false, ...}
// (docs/supervisor.md, "The control socket"). The command names, the request, the answers and the
// status a client is shown, each defined once here for smartcashd and smartcashctl.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/protocol.hpp"
#include "common/world_messages.hpp"

namespace smartcash::protocol {

/// The commands control.sock accepts.
namespace control_cmd {
inline constexpr const char* status = "status";
inline constexpr const char* stop = "stop";
inline constexpr const char* pause = "pause";
inline constexpr const char* resume = "resume";
inline constexpr const char* checkpoint = "checkpoint";
inline constexpr const char* tier = "tier";    ///< with a string field "tier": the tier's name
inline constexpr const char* watch = "watch";  ///< a stream of WatchLine until the client leaves
inline constexpr const char* history = "history";  ///< the journal's last entries (HistoryAnswer)
inline constexpr const char* metrics = "metrics";  ///< Prometheus text (MetricsAnswer)
}  // namespace control_cmd

/// How many journal entries `history` gives when the request says no `limit`.
inline constexpr std::int64_t default_history_limit = 1000;

/// One request line.
struct ControlRequestLine {
    std::string cmd;
    std::optional<std::string> tier;    ///< for control_cmd::tier
    std::optional<std::int64_t> limit;  ///< for control_cmd::history: the last N entries

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("cmd", s.cmd), v("tier", s.tier), v("limit", s.limit);
    }
};
Json to_json(const ControlRequestLine& request);
/// Reads a request that protocol::decode(line, error, "cmd") accepted.
ControlRequestLine control_request_from_json(const Json& request);

/// What every answer says: whether the request was done, and why not. A command that changes the
/// job also says the job's state and phase after it; `status` says much more (StatusView).
struct ControlAnswer {
    bool ok = false;
    std::optional<std::string> error;
    std::optional<std::string> state;
    std::optional<std::string> phase;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("ok", s.ok), v("error", s.error), v("state", s.state), v("phase", s.phase);
    }
};
Json to_json(const ControlAnswer& answer);
ControlAnswer control_answer_from_json(const Json& answer);

/// {"ok": false, "error": why}.
Json control_error(const std::string& why);

/// The answer to a command that changes the job: accepted, and the job's state and phase after.
Json control_accepted(const std::string& state, const std::string& phase);

/// Whether state.json and the journal are on disk (status shows it, so that a full disk is seen
/// before a restart would resume from an old state).
struct Persistence {
    bool ok = true;
    std::optional<std::string> error;
    std::optional<double> failing_for_s;
    std::optional<std::uint64_t> unwritten_journal_lines;
    std::optional<bool> state_unsaved;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("ok", s.ok), v("error", s.error), v("failing_for_s", s.failing_for_s);
        v("unwritten_journal_lines", s.unwritten_journal_lines);
        v("state_unsaved", s.state_unsaved);
    }
};

/// What a tier did during the job (state.json keeps it per tier name).
struct TierSummary {
    std::uint64_t peak_rss = 0;         ///< highest worker-tree RSS sampled at this tier
    std::uint64_t peak_device_mem = 0;  ///< highest device memory the worker reported
    int launches = 0;
    std::string last_outcome;  ///< class name of the last end at this tier ("" while none)

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("peak_rss", s.peak_rss), v("peak_device_mem", s.peak_device_mem);
        v("launches", s.launches), v("last_outcome", s.last_outcome);
    }
};

/// What the job has done so far: state.json records it, `status` shows it.
struct JobRecord {
    std::string tier;
    std::int64_t step = -1;
    std::int64_t total_steps = 0;
    int epoch = 0;
    std::optional<double> map50;
    std::optional<double> map50_95;
    std::map<std::string, double> layers_map50;
    int launches = 0;
    int failures_without_progress = 0;
    std::string last_checkpoint;
    std::int64_t last_checkpoint_step = -1;
    std::string message;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("tier", s.tier), v("step", s.step), v("total_steps", s.total_steps);
        v("epoch", s.epoch), v("map50", s.map50), v("map50_95", s.map50_95);
        v("layers_map50", s.layers_map50), v("launches", s.launches);
        v("failures_without_progress", s.failures_without_progress);
        v("last_checkpoint", s.last_checkpoint);
        v("last_checkpoint_step", s.last_checkpoint_step), v("message", s.message);
    }
};

/// The answer to `status`: from the running supervisor, or (supervisor_running false) from the
/// state.json of a run whose supervisor is gone.
/// A job with several ranks (docs/distributed.md): this rank, and every rank's figures as its
/// world agent last saw them.
struct WorldStatus {
    int rank = 0;
    int world_size = 1;
    std::string store;  ///< HOST:PORT of the agents' store (rank 0's)
    std::int64_t round = -1;
    std::vector<int> waiting_for;  ///< ranks not joined yet, while this rank waits for a round
    std::vector<world::RankView> ranks;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("rank", s.rank), v("world_size", s.world_size), v("store", s.store);
        v("round", s.round), v("waiting_for", s.waiting_for), v("ranks", s.ranks);
    }
};

struct StatusView : JobRecord {
    std::string state;  ///< the job: running, paused, stopped, done, failed
    std::string phase = "idle";
    std::optional<std::string> tier_device;
    std::optional<std::string> device;  ///< as the worker's hello named it
    std::optional<std::uint64_t> memory_limit;
    std::optional<double> loss;
    std::optional<std::uint64_t> rss;
    std::optional<std::uint64_t> device_mem;
    int pid = 0;  ///< the worker's (0: none)
    std::optional<Persistence> persistence;
    std::string run_dir;
    std::optional<int> supervisor_pid;
    std::optional<bool> supervisor_running;  ///< false: read from state.json
    std::optional<std::map<std::string, TierSummary>> tiers;
    // At a glance, from the config and the worker's latest progress report:
    std::optional<int> tier_index;  ///< the tier's place in tier_order (0: the first)
    std::vector<std::string> tier_order;
    std::optional<int> epochs;          ///< epochs in the whole job (both phases)
    std::optional<int> phase_epochs;    ///< epochs in the training phase in progress
    std::optional<int> training_phase;  ///< 1 (backbone frozen) or 2 (fine-tuning all)
    std::optional<int> phases;          ///< training phases in the job (1 or 2)
    std::optional<std::int64_t> step_in_epoch;
    std::optional<std::int64_t> steps_per_epoch;
    std::optional<double> images_per_s;
    std::optional<double> eta_s;       ///< remaining steps at the recent step rate
    std::optional<WorldStatus> world;  ///< several ranks only

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        JobRecord::fields(s, v);
        v("state", s.state), v("phase", s.phase), v("tier_device", s.tier_device);
        v("device", s.device), v("memory_limit", s.memory_limit), v("loss", s.loss);
        v("rss", s.rss), v("device_mem", s.device_mem), v("pid", s.pid);
        v("persistence", s.persistence), v("run_dir", s.run_dir);
        v("supervisor_pid", s.supervisor_pid), v("supervisor_running", s.supervisor_running);
        v("tiers", s.tiers), v("tier_index", s.tier_index), v("tier_order", s.tier_order);
        v("epochs", s.epochs), v("phase_epochs", s.phase_epochs);
        v("training_phase", s.training_phase), v("phases", s.phases);
        v("step_in_epoch", s.step_in_epoch), v("steps_per_epoch", s.steps_per_epoch);
        v("images_per_s", s.images_per_s), v("eta_s", s.eta_s), v("world", s.world);
    }
};

/// {"ok": true, ...the status}; the figures not known yet (loss, mAP) are null.
Json to_json(const StatusView& status);
/// Reads an answer written by to_json(const StatusView&).
StatusView status_from_json(const Json& answer);

/// One line of a `watch` stream: the status (first, and again at most every 0.5 s while it
/// changes), or a journal entry as it is written.
namespace watch_kind {
inline constexpr const char* status = "status";
inline constexpr const char* event = "event";
}  // namespace watch_kind
inline constexpr const char* watch_kind_key = "kind";
inline constexpr const char* watch_event_key = "event";

/// {"ok": true, "kind": "status", ...the status}.
Json watch_status_line(const StatusView& status);
/// {"ok": true, "kind": "event", "event": {...the journal entry, with its "t"}}.
Json watch_event_line(const Json& journal_entry);

/// The answer to `history`: the journal's last entries, oldest first, each as the journal has it
/// (its "t" and "event" and the entry's fields; journal_event_from_json() reads them).
struct HistoryAnswer {
    bool ok = true;
    std::vector<Json> events;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("ok", s.ok), v("events", s.events);
    }
};
Json to_json(const HistoryAnswer& answer);
HistoryAnswer history_from_json(const Json& answer);

/// The answer to `metrics`: the Prometheus text exposition format, version 0.0.4.
struct MetricsAnswer {
    bool ok = true;
    std::string text;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("ok", s.ok), v("text", s.text);
    }
};
Json to_json(const MetricsAnswer& answer);
MetricsAnswer metrics_from_json(const Json& answer);

}  // namespace smartcash::protocol
