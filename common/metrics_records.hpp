// RUN_DIR/metrics.jsonl: one JSON object per line, written by the worker after each optimizer step
// and each epoch, read by `smartcashctl report` and by people with jq (docs/protocol.md,
// "metrics.jsonl"). One struct per record type, its fields listed once, as for the reports.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/protocol.hpp"
#include "common/reports.hpp"

namespace smartcash::protocol {

/// One optimizer step.
struct StepMetrics {
    static constexpr const char* name = "step";
    std::int64_t step = 0;  ///< steps done after this one
    int epoch = 0;
    int phase = 1;
    double loss = 0;
    double box = 0;
    double obj = 0;
    double cls = 0;
    double grad_norm = 0;
    bool skipped = false;  ///< the step was skipped for a non-finite loss or gradient
    std::int64_t skipped_steps = 0;
    double lr = 0;
    double images_per_s = 0;
    std::uint64_t rss = 0;
    std::uint64_t device_mem = 0;
    std::uint64_t device_reserved = 0;
    std::uint64_t peak_device_mem = 0;
    std::uint64_t peak_device_reserved = 0;
    std::string tier;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("step", s.step), v("epoch", s.epoch), v("phase", s.phase), v("loss", s.loss);
        v("box", s.box), v("obj", s.obj), v("cls", s.cls), v("grad_norm", s.grad_norm);
        v("skipped", s.skipped), v("skipped_steps", s.skipped_steps), v("lr", s.lr);
        v("images_per_s", s.images_per_s), v("rss", s.rss), v("device_mem", s.device_mem);
        v("device_reserved", s.device_reserved), v("peak_device_mem", s.peak_device_mem);
        v("peak_device_reserved", s.peak_device_reserved), v("tier", s.tier);
    }
};

/// One epoch's end: the last step's losses, the validation when one ran, time and peaks.
struct EpochMetrics {
    static constexpr const char* name = "epoch";
    int epoch = 0;
    int phase = 1;
    std::int64_t step = 0;
    double loss = 0;
    double box = 0;
    double obj = 0;
    double cls = 0;
    std::string tier;
    std::int64_t skipped_steps = 0;
    std::optional<double> map50;  ///< set when the epoch was evaluated
    std::optional<double> map50_95;
    std::optional<double> precision;
    std::optional<double> recall;
    std::optional<std::map<std::string, LayerScores>> layers;
    double seconds = 0;
    std::uint64_t peak_rss = 0;
    std::uint64_t peak_device_mem = 0;
    std::uint64_t peak_device_reserved = 0;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        v("epoch", s.epoch), v("phase", s.phase), v("step", s.step), v("loss", s.loss);
        v("box", s.box), v("obj", s.obj), v("cls", s.cls), v("tier", s.tier);
        v("skipped_steps", s.skipped_steps), v("map50", s.map50), v("map50_95", s.map50_95);
        v("precision", s.precision), v("recall", s.recall), v("layers", s.layers);
        v("seconds", s.seconds), v("peak_rss", s.peak_rss);
        v("peak_device_mem", s.peak_device_mem), v("peak_device_reserved", s.peak_device_reserved);
    }
};

using MetricsRecord = std::variant<StepMetrics, EpochMetrics>;

/// The line's object: the fields and "type".
Json to_json(const MetricsRecord& record);

/// Reads one line's object; nullopt (and *error) for a type this version does not know.
std::optional<MetricsRecord> metrics_record_from_json(const Json& line, std::string* error);

/// Reads a whole metrics.jsonl. A line that is not JSON (a torn last line after a kill) or of an
/// unknown type is skipped and counted in *skipped_lines. Throws std::runtime_error naming the
/// file when it cannot be opened.
std::vector<MetricsRecord> read_metrics_file(const std::string& path,
                                             std::size_t* skipped_lines = nullptr);

}  // namespace smartcash::protocol
