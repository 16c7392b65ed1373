// `smartcash-worker bench`: times training steps of a model configuration and reports memory.
#pragma once

#include <string>

namespace smartcash::train {

struct BenchOptions {
    std::string backbone = "efficientnet_b4";
    double width_multiple = 1.0;
    double depth_multiple = 1.0;
    int img_size = 640;
    int micro_batch = 1;
    int steps = 2;
    int threads = 2;
    bool activation_checkpointing = false;
    bool json = false;
};

/// Runs `steps` optimizer steps on random images with boxes and prints the time per step and the
/// peak resident memory. Returns a worker exit code.
int run_bench(const BenchOptions& options);

}  // namespace smartcash::train
