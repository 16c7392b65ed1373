#include "worker/commands/bench.hpp"

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/config.hpp"
#include "common/exit_codes.hpp"
#include "common/units.hpp"
#include "worker/checkpoint/checkpoint.hpp"
#include "worker/device/blas.hpp"
#include "worker/device/device.hpp"
#include "worker/device/process_memory.hpp"
#include "worker/device/step_memory.hpp"
#include "worker/model/feature_extractor.hpp"
#include "worker/model/parameter_count.hpp"
#include "worker/train/optimizer.hpp"
#include "worker/train/train_step.hpp"

namespace smartcash::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const auto n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// Random images with three boxes each (one per detection layer).
std::vector<data::Sample> random_samples(int count, int img_size) {
    std::vector<data::Sample> samples;
    cv::RNG rng(7);
    for (int i = 0; i < count; ++i) {
        data::Sample s;
        s.image = cv::Mat(img_size, img_size, CV_8UC3);
        rng.fill(s.image, cv::RNG::UNIFORM, 0, 255);
        s.labels = {{i % 7, 0.5f, 0.5f, 0.6f, 0.3f},
                    {7 + i % 7, 0.3f, 0.4f, 0.1f, 0.1f},
                    {14 + i % 3, 0.7f, 0.6f, 0.05f, 0.2f}};
        samples.push_back(std::move(s));
    }
    return samples;
}

model::DetectorOptions detector_options(const BenchOptions& o) {
    ModelConfig mc;
    mc.backbone = o.backbone == "cspdarknet" ? Backbone::cspdarknet : Backbone::efficientnet_b4;
    mc.width_multiple = o.width_multiple;
    mc.depth_multiple = o.depth_multiple;
    mc.img_size = o.img_size;
    return model::options_from(mc);
}

torch::Device bench_device(const std::string& name) {
    if (name == "cpu") return resolve_device(Device::cpu);
    if (name == "cuda") return resolve_device(Device::cuda);
    if (name == "mps") return resolve_device(Device::mps);
    return resolve_device(Device::auto_);
}

/// Times writing a full checkpoint (serialising the model and optimizer, then the atomic write
/// with its manifest) and reading it back (verifying, parsing, copying into the model).
int bench_checkpoint(const BenchOptions& o) {
    torch::manual_seed(1);
    model::Detector model(detector_options(o));
    model->train();
    TrainingConfig tc;
    auto optimizer = make_optimizer(*model, tc);
    apply_learning_rates(*optimizer, tc, 2, 100, 1000);
    YoloLoss loss(tc.loss, model->anchors());
    // One small step creates the optimizer state of every parameter; the weights do not depend
    // on the image size.
    train_step(*model, *optimizer, loss, random_samples(1, 64), 1, 64, 10.0, torch::kCPU);

    namespace fs = std::filesystem;
    const bool own_dir = o.checkpoint_dir.empty();
    const fs::path dir =
        own_dir ? fs::temp_directory_path() / fmt::format("smartcash-bench-{}", ::getpid())
                : fs::path(o.checkpoint_dir);
    fs::create_directories(dir);
    CheckpointStore store(dir.string(), 3);
    CheckpointMeta meta;
    meta.kind = "step";
    meta.progress.step = 1;
    meta.tier = "bench";
    meta.device = "cpu";
    meta.micro_batch = 1;
    meta.effective_batch = 1;

    auto t0 = Clock::now();
    const std::string bytes = serialize_checkpoint(*model, *optimizer, meta, nullptr);
    const auto saved = store.save(bytes, meta);
    const double save_s = seconds_since(t0);

    t0 = Clock::now();
    auto loaded = read_checkpoint(saved.path, /*require_manifest=*/true);
    restore_checkpoint(loaded, *model, *optimizer, torch::kCPU);
    const double load_s = seconds_since(t0);
    const auto size = fs::file_size(saved.path);
    if (own_dir) fs::remove_all(dir);

    if (o.json) {
        nlohmann::json j = {{"backbone", o.backbone},
                            {"parameters", model::count_parameters(*model).total},
                            {"save_s", save_s},
                            {"load_s", load_s},
                            {"bytes", size}};
        std::cout << j.dump() << "\n";
    } else {
        std::cout << fmt::format("checkpoint {:<16} | {} | save {:.2f}s | load {:.2f}s\n",
                                 o.backbone, format_size(size), save_s, load_s);
    }
    return exit_code::done;
}

}  // namespace

BenchOptions bench_options_from_config(const std::string& config_path,
                                       const std::string& tier_name) {
    const Config config = load_config(config_path);
    const TierConfig* tier = tier_name.empty() ? &config.tiers.at(0) : config.find_tier(tier_name);
    if (!tier) throw ConfigError(config_path, 0, 0, "tiers", "no tier named '" + tier_name + "'");
    BenchOptions o;
    o.config_path = config_path;
    o.tier = tier->name;
    o.backbone = config.model.backbone == Backbone::cspdarknet ? "cspdarknet" : "efficientnet_b4";
    o.width_multiple = config.model.width_multiple;
    o.depth_multiple = config.model.depth_multiple;
    o.img_size = config.model.img_size;
    o.device = to_string(tier->device);
    o.micro_batch = tier->micro_batch;
    o.threads = tier->threads;
    o.activation_checkpointing = tier->activation_checkpointing;
    o.cleanup = to_string(tier->cleanup);
    return o;
}

int run_bench(BenchOptions o) {
    if (o.backbone != "efficientnet_b4" && o.backbone != "cspdarknet") {
        std::cerr << "error: unknown backbone '" << o.backbone
                  << "' (valid: efficientnet_b4, cspdarknet)\n";
        return exit_code::usage;
    }
    apply_threads(o.threads);
    apply_allocator_policy(o.cleanup == "extreme" ? Cleanup::extreme : Cleanup::normal);
    if (o.checkpoint) return bench_checkpoint(o);
    const torch::Device device = bench_device(o.device);
    const auto memory_format =
        o.channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;

    torch::manual_seed(1);
    model::Detector model(detector_options(o));
    model->set_activation_checkpointing(o.activation_checkpointing);
    model->train();
    model->to(device);
    model->set_channels_last(device.is_cpu());  // as the trainer does
    if (o.channels_last) {
        torch::NoGradGuard no_grad;
        for (auto& p : model->parameters())
            if (p.dim() == 4) p.set_data(p.contiguous(memory_format));
    }
    TrainingConfig tc;
    std::unique_ptr<torch::optim::AdamW> optimizer;
    std::function<void()> step;
    std::int64_t parameters = 0;
    std::vector<data::Sample> samples = random_samples(o.micro_batch * o.accumulate, o.img_size);
    YoloLoss loss(tc.loss, model->anchors());

    if (o.backbone_only) {
        auto& backbone = dynamic_cast<model::FeatureExtractor&>(model->backbone_module());
        auto params = model->backbone_parameters();
        for (const auto& p : params) parameters += p.numel();
        optimizer = std::make_unique<torch::optim::AdamW>(
            params, torch::optim::AdamWOptions(1e-4).weight_decay(5e-4));
        auto images = torch::rand({o.micro_batch, 3, o.img_size, o.img_size})
                          .to(device)
                          .contiguous(memory_format);
        step = [&, images] {
            // Gradients are undefined here, as the trainer leaves them after each step.
            for (int k = 0; k < o.accumulate; ++k) {
                auto features = backbone.forward(images);
                torch::Tensor total = features[0].square().mean();
                for (std::size_t i = 1; i < features.size(); ++i)
                    total = total + features[i].square().mean();
                total.backward();
            }
            optimizer->step();
            release_gradients(*optimizer);
        };
    } else {
        parameters = model::count_parameters(*model).total;
        optimizer = make_optimizer(*model, tc);
        apply_learning_rates(*optimizer, tc, 2, 100, 1000);
        step = [&] {
            train_step(*model, *optimizer, loss, samples, o.micro_batch, o.img_size, 10.0, device);
        };
    }

    std::vector<double> seconds;
    double first = 0;
    for (int k = 0; k < o.warmup + o.steps; ++k) {
        const auto t0 = Clock::now();
        step();
        if (device.is_cuda() || device.is_mps())
            (void)torch::zeros({1}, device).cpu();  // wait for the device
        const double s = seconds_since(t0);
        if (k == 0) first = s;
        if (k >= o.warmup) seconds.push_back(s);
    }
    const auto mem = read_process_memory();
    const auto dev = device_memory(device);
    const double steady = median(seconds);
    const int images = o.micro_batch * o.accumulate;
    if (o.json) {
        nlohmann::json j = {{"backbone", o.backbone},
                            {"backbone_only", o.backbone_only},
                            {"width_multiple", o.width_multiple},
                            {"depth_multiple", o.depth_multiple},
                            {"img_size", o.img_size},
                            {"device", device_name(device)},
                            {"blas", blas_in_use().name},
                            {"blas_library", blas_in_use().library},
                            {"micro_batch", o.micro_batch},
                            {"accumulate", o.accumulate},
                            {"threads", o.threads},
                            {"activation_checkpointing", o.activation_checkpointing},
                            {"cleanup", o.cleanup},
                            {"channels_last", o.channels_last},
                            {"parameters", parameters},
                            {"first_step_s", first},
                            {"step_times_s", seconds},
                            {"step_s", steady},
                            {"images_per_s", images / steady},
                            {"peak_rss", mem.peak}};
        if (!o.tier.empty()) j["tier"] = o.tier;
        if (device.is_cuda() || device.is_mps())
            j["peak_device_mem"] = std::max(dev.peak_allocated, dev.allocated);
        std::cout << j.dump() << "\n";
    } else {
        std::cout << fmt::format(
            "{:<16} {:>4}px batch {}x{} threads {} ckpt {:<3}{} | {:>6.2f} M params | first step "
            "{:>7.2f}s | step {:>7.2f}s | {:>6.2f} img/s | peak RSS {}\n",
            o.backbone_only ? o.backbone + "/bb" : o.backbone, o.img_size, o.micro_batch,
            o.accumulate, o.threads, o.activation_checkpointing ? "on" : "off",
            o.channels_last ? " NHWC" : "", parameters / 1e6, first, steady, images / steady,
            format_size(mem.peak));
    }
    return exit_code::done;
}

}  // namespace smartcash::train
