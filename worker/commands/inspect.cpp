#include "worker/commands/inspect.hpp"

#include <fmt/core.h>

#include <filesystem>
#include <iostream>
#include <optional>

#include "common/atomic_file.hpp"
#include "common/exit_codes.hpp"
#include "common/run_dir.hpp"
#include "common/sha256.hpp"
#include "common/units.hpp"
#include "worker/checkpoint/checkpoint.hpp"
#include "worker/data/dataset.hpp"
#include "worker/data/dataset_source.hpp"
#include "worker/data/labels.hpp"
#include "worker/device/device.hpp"
#include "worker/inference/validation.hpp"
#include "worker/model/parameter_count.hpp"
#include "worker/model/pretrained.hpp"
#include "worker/ui/progress.hpp"
#include "worker/ui/summary.hpp"
#include "worker/ui/table.hpp"

namespace smartcash::train {

int run_devices(bool json) {
    const DevicesReport& report = devices();
    if (json) {
        std::cout << to_json(report).dump() << "\n";
        return exit_code::done;
    }
    auto row = [](const char* name, const DeviceStatus& s) -> std::vector<std::string> {
        return {name, s.usable ? "yes" : "no", s.usable ? "" : s.why};
    };
    std::cout << "LibTorch " << report.torch_version << "\n"
              << "BLAS " << report.blas
              << (report.blas_library.empty() ? "" : " (" + report.blas_library + ")")
              << (report.blas_reference ? ": the unoptimised reference BLAS" : "") << "\n"
              << ui::render_table(
                     {"device", "usable", "why not"},
                     {{"cpu", "yes", ""}, row("cuda", report.cuda), row("mps", report.mps)},
                     ui::stdout_is_terminal() ? ui::TableStyle::unicode : ui::TableStyle::ascii);
    return exit_code::done;
}

int run_model_info(const std::string& config_path, const std::string& backbone, bool json,
                   const std::string& pretrained) {
    ModelConfig mc;
    if (!config_path.empty()) {
        mc = load_config(config_path).model;
    } else if (backbone == "efficientnet_b4") {
        mc.backbone = Backbone::efficientnet_b4;
    } else if (backbone == "cspdarknet") {
        mc.backbone = Backbone::cspdarknet;
    } else {
        std::cerr << "error: unknown backbone '" << backbone
                  << "' (valid: efficientnet_b4, cspdarknet)\n";
        return exit_code::usage;
    }
    model::Detector detector(model::options_from(mc));
    auto counts = model::count_parameters(*detector);
    std::optional<model::PretrainedPlan> plan;
    const std::string weights = pretrained.empty() ? mc.pretrained : pretrained;
    if (!weights.empty()) {
        try {
            plan = model::plan_pretrained(*detector, model::read_weights_file(weights));
        } catch (const model::WeightsFileError& e) {
            std::cerr << "error: " << e.what() << "\n";
            return exit_code::config_error;
        }
    }
    const int code = plan && !plan->complete() ? exit_code::config_error : exit_code::done;
    if (json) {
        auto j = model::to_json(counts);
        j["model"] = to_string(mc.backbone);
        j["width_multiple"] = mc.width_multiple;
        j["depth_multiple"] = mc.depth_multiple;
        if (plan) j["pretrained"] = model::to_json(*plan);
        std::cout << j.dump(2) << "\n";
    } else {
        std::cout << fmt::format("model {} (width x{}, depth x{})\n", to_string(mc.backbone),
                                 mc.width_multiple, mc.depth_multiple);
        auto row = [](const char* name, std::int64_t n) {
            std::cout << fmt::format("  {:<10} {:>12}  ({:.2f} M)\n", name, n,
                                     static_cast<double>(n) / 1e6);
        };
        row("backbone", counts.backbone);
        row("adapters", counts.adapters);
        row("neck", counts.neck);
        row("head", counts.head);
        row("total", counts.total);
        if (plan)
            std::cout << (plan->complete() ? "pretrained weights (load completely):\n"
                                           : "pretrained weights (do NOT load completely; strict "
                                             "loading would refuse them):\n")
                      << model::describe(*plan);
    }
    return code;
}

int run_checkpoint_info(const std::string& path, bool json) {
    nlohmann::json out = {{"path", path}};
    try {
        auto ckpt = read_checkpoint(path, /*require_manifest=*/false);
        const auto& m = ckpt.meta;
        out["valid"] = true;
        out["format_version"] = m.format_version;
        out["kind"] = m.kind;
        out["phase"] = m.phase;
        out["epoch"] = m.progress.epoch;
        out["step"] = m.progress.step;
        out["step_in_epoch"] = m.progress.step_in_epoch;
        out["tier"] = m.tier;
        out["device"] = m.device;
        out["micro_batch"] = m.micro_batch;
        out["effective_batch"] = m.effective_batch;
        out["world_size"] = m.world_size;
        out["best_map50"] = m.progress.best_map50;
        out["finished"] = m.progress.finished;
        out["tiers"] = m.progress.tiers;
        out["skipped_steps"] = m.progress.skipped_steps;
        out["nonfinite_streak"] = m.progress.nonfinite_streak;
        if (m.dataset)
            out["dataset"] = {{"train",
                               {{"images", m.dataset->train.images},
                                {"files_sha256", m.dataset->train.files_sha256}}},
                              {"valid",
                               {{"images", m.dataset->valid.images},
                                {"files_sha256", m.dataset->valid.files_sha256}}}};
        out["input_normalization"] = m.input_normalization;
        out["pretrained"] = m.pretrained;
        out["weights_sha256"] = hash_tensors(ckpt.model);
        out["file_sha256"] = sha256_file(path);
    } catch (const CheckpointError& e) {
        out["valid"] = false;
        out["reason"] = e.what();
    }
    if (json) {
        std::cout << out.dump(2) << "\n";
    } else if (out["valid"].get<bool>()) {
        std::cout << fmt::format(
            "{}\n  valid           yes\n  format version  {}\n  kind            {}\n  phase        "
            "   {}\n  epoch           {}\n"
            "  step            {}\n  tier            {} ({}, micro-batch {})\n  best mAP@0.5    "
            "{:.4f}\n"
            "  weights sha256  {}\n",
            path, out["format_version"].get<int>(), out["kind"].get<std::string>(),
            out["phase"].get<int>(), out["epoch"].get<int>(), out["step"].get<std::int64_t>(),
            out["tier"].get<std::string>(), out["device"].get<std::string>(),
            out["micro_batch"].get<int>(), out["best_map50"].get<double>(),
            out["weights_sha256"].get<std::string>());
        std::cout << "  input           "
                  << (out["input_normalization"] == "imagenet" ? "ImageNet mean/std normalization"
                                                               : "[0, 1], no normalization")
                  << "\n";
        if (out["pretrained"].is_null())
            std::cout << "  started from    random weights\n";
        else
            std::cout << "  started from    " << out["pretrained"].value("file", "") << "\n"
                      << "                  sha256 " << out["pretrained"].value("sha256", "")
                      << ", " << out["pretrained"].value("naming", "") << " names\n";
    } else {
        std::cout << path << "\n  valid           no: " << out["reason"].get<std::string>() << "\n";
    }
    return out["valid"].get<bool>() ? exit_code::done : exit_code::io_error;
}

int run_export(const std::string& checkpoint_path, const std::string& out_path, bool backbone_only,
               const std::string& naming_name) {
    model::Naming naming;
    try {
        naming = model::naming_from(naming_name);
    } catch (const std::invalid_argument& e) {
        std::cerr << "error: --naming: " << e.what() << "\n";
        return exit_code::usage;
    }
    auto ckpt = read_checkpoint(checkpoint_path, /*require_manifest=*/false);
    const Config saved = parse_config(ckpt.meta.config_yaml, checkpoint_path + " (saved config)");
    model::Detector detector(model::options_from(saved.model));
    torch::optim::AdamW unused(detector->parameters(), torch::optim::AdamWOptions(0.0));
    LoadedCheckpoint weights_only = ckpt;
    weights_only.optimizer.clear();
    restore_checkpoint(weights_only, *detector, unused, torch::kCPU);
    std::string bytes;
    try {
        bytes = model::export_weights(*detector, naming, backbone_only);
    } catch (const std::invalid_argument& e) {
        std::cerr << "error: " << e.what() << "\n";
        return exit_code::usage;
    }
    write_file_atomic(out_path, bytes);
    std::cout << fmt::format(
        "wrote the {} of {} (step {}) as safetensors with {} names to {} ({})\n",
        backbone_only ? "backbone" : "whole detector", checkpoint_path, ckpt.meta.progress.step,
        model::to_string(naming), out_path, format_size(bytes.size()));
    return exit_code::done;
}

int run_eval(const std::string& config_path, const std::string& checkpoint_path,
             const std::string& split_name, const std::string& run_dir_arg, bool json) {
    Config config = load_config(config_path);
    auto ckpt = read_checkpoint(checkpoint_path, /*require_manifest=*/false);
    const std::string run_dir =
        run_dir_arg.empty() ? run_dir::default_for(config_path) : run_dir_arg;
    const std::string dataset = data::prepare_dataset(config, run_dir);
    auto data = data::open_dataset(dataset, config.data.bad_labels);
    const data::Split* split = nullptr;
    if (split_name == "valid" || split_name == "val")
        split = &data.valid;
    else if (split_name == "test")
        split = &data.test;
    else if (split_name == "train")
        split = &data.train;
    else {
        std::cerr << "error: unknown split '" << split_name << "' (valid, test, train)\n";
        return exit_code::usage;
    }
    if (split->empty()) throw data::DataError(dataset + ": the " + split_name + " split is empty");
    const TierConfig& tier = config.tiers.front();
    const auto device = resolve_device(device_available(tier.device) ? tier.device : Device::cpu);
    apply_threads(tier.threads);
    model::Detector detector(model::options_from(config.model));
    detector->to(device);
    detector->set_channels_last(device.is_cpu());
    torch::optim::AdamW unused(detector->parameters(), torch::optim::AdamWOptions(0.0));
    LoadedCheckpoint weights_only = ckpt;
    weights_only.optimizer.clear();
    restore_checkpoint(weights_only, *detector, unused, device);
    auto result = evaluate_split(*detector, *split, data.names, config, device, tier.micro_batch);
    if (json) {
        auto j = eval::to_json(result);
        j["checkpoint"] = checkpoint_path;
        j["split"] = split_name;
        j["images"] = split->size();
        std::cout << j.dump(2) << "\n";
    } else {
        std::cout << fmt::format("{} on the {} split ({} images)\n", checkpoint_path, split_name,
                                 split->size());
        std::cout << ui::format_eval_table(
            result, ui::stdout_is_terminal() ? ui::TableStyle::unicode : ui::TableStyle::ascii);
    }
    return exit_code::done;
}

}  // namespace smartcash::train
