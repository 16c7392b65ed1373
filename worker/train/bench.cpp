#include "worker/train/bench.hpp"

#include <chrono>
#include <iostream>

#include <fmt/core.h>

#include "common/exit_codes.hpp"
#include "common/units.hpp"
#include "worker/model/parameter_count.hpp"
#include "worker/train/device.hpp"
#include "worker/train/optimizer.hpp"
#include "worker/train/process_memory.hpp"
#include "worker/train/trainer.hpp"

namespace smartcash::train {

int run_bench(const BenchOptions& o) {
    ModelConfig mc;
    if (o.backbone == "efficientnet_b4") mc.backbone = Backbone::efficientnet_b4;
    else if (o.backbone == "cspdarknet") mc.backbone = Backbone::cspdarknet;
    else {
        std::cerr << "error: unknown backbone '" << o.backbone << "' (valid: efficientnet_b4, cspdarknet)\n";
        return exit_code::usage;
    }
    mc.width_multiple = o.width_multiple;
    mc.depth_multiple = o.depth_multiple;
    mc.img_size = o.img_size;
    apply_threads(o.threads);
    torch::manual_seed(1);
    model::Detector model(model::options_from(mc));
    model->set_activation_checkpointing(o.activation_checkpointing);
    model->train();
    TrainingConfig tc;
    auto optimizer = make_optimizer(*model, tc);
    apply_learning_rates(*optimizer, tc, 2, 100, 1000);
    YoloLoss loss(tc.loss, model->anchors());

    // Random images, three boxes each (one per detection layer).
    std::vector<data::Sample> samples;
    cv::RNG rng(7);
    for (int i = 0; i < o.micro_batch; ++i) {
        data::Sample s;
        s.image = cv::Mat(o.img_size, o.img_size, CV_8UC3);
        rng.fill(s.image, cv::RNG::UNIFORM, 0, 255);
        s.labels = {{i % 7, 0.5f, 0.5f, 0.6f, 0.3f}, {7 + i % 7, 0.3f, 0.4f, 0.1f, 0.1f}, {14 + i % 3, 0.7f, 0.6f, 0.05f, 0.2f}};
        samples.push_back(std::move(s));
    }
    std::vector<double> seconds;
    for (int step = 0; step < o.steps; ++step) {
        auto t0 = std::chrono::steady_clock::now();
        train_step(*model, *optimizer, loss, samples, o.micro_batch, o.img_size, 10.0, torch::kCPU);
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    const auto mem = read_process_memory();
    const auto counts = model::count_parameters(*model);
    double steady = seconds.size() > 1 ? 0 : seconds.front();
    for (std::size_t i = 1; i < seconds.size(); ++i) steady += seconds[i] / static_cast<double>(seconds.size() - 1);
    if (o.json) {
        nlohmann::json j = {{"backbone", o.backbone}, {"width_multiple", o.width_multiple},
                            {"depth_multiple", o.depth_multiple}, {"img_size", o.img_size},
                            {"micro_batch", o.micro_batch}, {"threads", o.threads},
                            {"activation_checkpointing", o.activation_checkpointing},
                            {"parameters", counts.total}, {"first_step_s", seconds.front()},
                            {"step_s", steady}, {"images_per_s", o.micro_batch / steady},
                            {"peak_rss", mem.peak}};
        std::cout << j.dump() << "\n";
    } else {
        std::cout << fmt::format("{:<16} {:>4}px batch {} threads {} ckpt {:<3} | {:>6.2f} M params | first step {:>7.2f}s | "
                                 "step {:>7.2f}s | {:>6.2f} img/s | peak RSS {}\n",
                                 o.backbone, o.img_size, o.micro_batch, o.threads,
                                 o.activation_checkpointing ? "on" : "off", counts.total / 1e6, seconds.front(), steady,
                                 o.micro_batch / steady, format_size(mem.peak));
    }
    return exit_code::done;
}

}  // namespace smartcash::train
