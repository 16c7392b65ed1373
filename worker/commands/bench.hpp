// `smartcash-worker bench`: times training steps of a model configuration and reports memory.
// One configuration per process, so that each peak resident set is its own.
#pragma once

#include <string>

namespace smartcash::train {

struct BenchOptions {
    std::string config_path;  ///< set by bench_options_from_config()
    std::string tier;
    std::string device = "cpu";  ///< auto | cpu | cuda | mps
    std::string backbone = "efficientnet_b4";
    double width_multiple = 1.0;
    double depth_multiple = 1.0;
    int img_size = 640;
    int micro_batch = 1;
    int accumulate = 1;  ///< micro-batches per optimizer step
    int steps = 3;       ///< timed optimizer steps, after `warmup` untimed ones
    int warmup = 1;
    int threads = 2;
    bool activation_checkpointing = false;
    std::string cleanup =
        "normal";  ///< the tier's cleanup: "extreme" installs the host block cache
    /// The backbone alone (stem and stages), loss = sum of the mean squares of P3/P4/P5, AdamW:
    /// the step that scripts/bench_peer.py runs through PyTorch's Python API.
    bool backbone_only = false;
    /// Inputs and weights in channels-last memory format (an experiment; the trainer keeps the
    /// weights in the default format and runs only the backbone's activations channels-last, on
    /// the CPU, as this benchmark always does).
    bool channels_last = false;
    /// Times writing and reading a full checkpoint (model, optimizer state) instead of steps.
    bool checkpoint = false;
    std::string checkpoint_dir;  ///< where the checkpoint timing writes (default: a temp dir)
    bool json = false;
};

/// The model (backbone, widths, image size) of a config and the settings of one of its tiers
/// (device, micro-batch, threads, activation checkpointing); `tier` empty: the first tier.
/// Throws ConfigError.
BenchOptions bench_options_from_config(const std::string& config_path, const std::string& tier);

/// Runs the benchmark and prints its figures (a table line, or one JSON object with --json):
/// the median time of the timed steps, images per second, and the peak resident set of the
/// process. Returns a worker exit code.
int run_bench(BenchOptions options);

}  // namespace smartcash::train
