// Worker -> supervisor: the reports the worker writes on its report fd (docs/protocol.md).
//
// One struct per report type, its wire name as `name` (the "type" field), its fields listed once in
// `fields()`. The worker builds these structs and the supervisor decodes them with
// report_from_json(), so the two cannot disagree on a name or a field: a renamed field is a compile
// error on one side.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>

#include "common/protocol.hpp"

namespace smartcash::protocol {

/// The first report of a launch: what the worker runs with and where it resumes.
struct Hello {
    static constexpr const char* name = "hello";
    std::int64_t pid = 0;
    std::string tier;
    std::string device;
    int threads = 0;
    int micro_batch = 0;
    int accumulation = 0;
    std::int64_t resumed_step = 0;  ///< 0 on a fresh start
    std::int64_t total_steps = 0;
    int epoch = 0;
    int phase = 1;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("pid", s.pid), v("tier", s.tier), v("device", s.device), v("threads", s.threads);
        v("micro_batch", s.micro_batch), v("accumulation", s.accumulation);
        v("resumed_step", s.resumed_step), v("total_steps", s.total_steps);
        v("epoch", s.epoch), v("phase", s.phase);
    }
};

/// The heartbeat: sent at least every few seconds while training or evaluating.
struct Progress {
    static constexpr const char* name = "progress";
    std::optional<std::int64_t> step;  ///< optimizer steps done
    std::optional<std::int64_t> total_steps;
    std::optional<int> epoch;
    int phase = 1;
    std::optional<double> loss;
    double loss_box = 0;
    double loss_obj = 0;
    double loss_cls = 0;
    double lr = 0;
    std::optional<double> images_per_s;
    std::uint64_t rss = 0;
    std::uint64_t device_mem = 0;       ///< live tensors on the device (0 on CPU)
    std::uint64_t device_reserved = 0;  ///< what the device's allocator holds (0 on CPU)
    std::int64_t skipped_steps = 0;     ///< steps skipped for a non-finite loss or gradient
    double eta_s = -1;                  ///< -1: not known yet

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("step", s.step), v("total_steps", s.total_steps), v("epoch", s.epoch);
        v("phase", s.phase), v("loss", s.loss), v("loss_box", s.loss_box);
        v("loss_obj", s.loss_obj), v("loss_cls", s.loss_cls), v("lr", s.lr);
        v("images_per_s", s.images_per_s), v("rss", s.rss), v("device_mem", s.device_mem);
        v("device_reserved", s.device_reserved), v("skipped_steps", s.skipped_steps);
        v("eta_s", s.eta_s);
    }
};

/// A checkpoint was written (and its manifest): the newest good state on disk.
struct CheckpointWritten {
    static constexpr const char* name = "checkpoint";
    std::string path;
    std::int64_t step = -1;
    int epoch = 0;
    std::string sha256;
    std::string kind;  ///< step, epoch, emergency, stop, requested

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("path", s.path), v("step", s.step), v("epoch", s.epoch), v("sha256", s.sha256);
        v("kind", s.kind);
    }
};

/// mAP of one detection layer.
struct LayerScores {
    std::optional<double> map50;
    std::optional<double> map50_95;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("map50", s.map50), v("map50_95", s.map50_95);
    }
};

/// A validation at an epoch's end.
struct Eval {
    static constexpr const char* name = "eval";
    std::optional<int> epoch;
    std::optional<std::int64_t> step;
    std::optional<double> map50;
    std::optional<double> map50_95;
    std::optional<double> precision;
    std::optional<double> recall;
    std::optional<std::map<std::string, LayerScores>> layers;  ///< by layer name
    std::optional<double> best_map50;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("epoch", s.epoch), v("step", s.step), v("map50", s.map50), v("map50_95", s.map50_95);
        v("precision", s.precision), v("recall", s.recall), v("layers", s.layers);
        v("best_map50", s.best_map50);
    }
};

/// An epoch boundary: where promotions happen.
struct EpochEnd {
    static constexpr const char* name = "epoch_end";
    std::optional<int> epoch;
    int phase = 1;
    std::optional<std::int64_t> step;
    double seconds = 0;
    std::uint64_t peak_rss = 0;
    std::uint64_t peak_device_mem = 0;  ///< highest so far at this launch
    std::uint64_t peak_device_reserved = 0;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("epoch", s.epoch), v("phase", s.phase), v("step", s.step), v("seconds", s.seconds);
        v("peak_rss", s.peak_rss), v("peak_device_mem", s.peak_device_mem);
        v("peak_device_reserved", s.peak_device_reserved);
    }
};

/// An allocation failed in the worker; it exits with the oom code after this.
struct Oom {
    static constexpr const char* name = "oom";
    std::string message;  ///< the allocator's text
    std::int64_t step = -1;
    std::string checkpoint;  ///< the emergency checkpoint, or empty
    std::uint64_t peak_device_mem = 0;
    std::uint64_t peak_device_reserved = 0;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("message", s.message), v("step", s.step), v("checkpoint", s.checkpoint);
        v("peak_device_mem", s.peak_device_mem), v("peak_device_reserved", s.peak_device_reserved);
    }
};

/// Sent just before a requested stop exits.
struct Stopping {
    static constexpr const char* name = "stopping";
    std::string reason;
    std::int64_t step = -1;
    std::string checkpoint;
    int exit_code = 0;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("reason", s.reason), v("step", s.step), v("checkpoint", s.checkpoint);
        v("exit_code", s.exit_code);
    }
};

/// A checkpoint found bad at start-up; an older one is used.
struct CheckpointRejected {
    static constexpr const char* name = "checkpoint_rejected";
    std::string message;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("message", s.message);
    }
};

/// An error that ends the worker (config, data, io, internal, training).
struct WorkerError {
    static constexpr const char* name = "error";
    std::string kind;
    std::string message;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("kind", s.kind), v("message", s.message);
    }
};

/// Training is over (finished, early_stop); the worker exits with the done code.
struct Done {
    static constexpr const char* name = "done";
    std::optional<std::int64_t> step;
    int epoch = 0;
    std::optional<double> best_map50;
    std::int64_t skipped_steps = 0;
    std::string reason;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("step", s.step), v("epoch", s.epoch), v("best_map50", s.best_map50);
        v("skipped_steps", s.skipped_steps), v("reason", s.reason);
    }
};

/// Any report.
using WorkerReport = std::variant<Hello, Progress, CheckpointWritten, Eval, EpochEnd, Oom, Stopping,
                                  CheckpointRejected, WorkerError, Done>;

/// The wire form: the fields, "type" and "v".
Json to_json(const WorkerReport& report);

/// Decodes a message that protocol::decode() accepted. Returns nullopt and sets *error for a
/// type this protocol does not know (the caller logs it and goes on).
std::optional<WorkerReport> report_from_json(const Json& message, std::string* error);

/// The wire name of a report ("hello", "progress", ...).
const char* type_of(const WorkerReport& report);

}  // namespace smartcash::protocol
