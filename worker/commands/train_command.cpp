#include "worker/commands/train_command.hpp"

#include <fmt/core.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "common/atomic_file.hpp"
#include "common/exit_codes.hpp"
#include "common/file_lock.hpp"
#include "common/run_dir.hpp"
#include "worker/channel/report_channel.hpp"
#include "worker/channel/stop_request.hpp"
#include "worker/commands/error_exit.hpp"
#include "worker/device/device.hpp"
#include "worker/distributed/process_group.hpp"
#include "worker/train/trainer.hpp"

namespace smartcash::train {

namespace fs = std::filesystem;

const TierConfig& select_tier(const Config& config, const std::string& name) {
    if (!name.empty()) {
        const TierConfig* tier = config.find_tier(name);
        if (!tier) {
            std::string names;
            for (const auto& t : config.tiers) names += (names.empty() ? "" : ", ") + t.name;
            throw ConfigError(config.source_path, 0, 0, "tiers",
                              fmt::format("no tier named '{}' (tiers: {})", name, names));
        }
        if (!device_available(tier->device)) {
            const DeviceStatus& status =
                tier->device == Device::cuda ? devices().cuda : devices().mps;
            throw ConfigError(
                config.source_path, 0, 0, "tiers",
                fmt::format("tier '{}' needs device {}, which cannot be used here: {}", tier->name,
                            to_string(tier->device), status.why));
        }
        return *tier;
    }
    for (const auto& t : config.tiers)
        if (device_available(t.device)) return t;
    throw ConfigError(config.source_path, 0, 0, "tiers",
                      "no tier's device is available on this machine");
}

int run_training(const TrainOptions& options) {
    install_stop_handlers();
    ignore_file_size_signal();
    auto channel = ReportChannel::open(options.report_fd, options.command_fd);
    auto report_error = [&](const std::string& kind, const std::string& message) {
        std::cerr << "error: " << message << std::endl;
        if (channel) channel->send(protocol::WorkerError{kind, message});
    };
    try {
        Config config = load_config(options.config_path);
        if (!options.pretrained.empty())
            config.model.pretrained = fs::absolute(options.pretrained).lexically_normal().string();
        if (options.pretrained_strict >= 0)
            config.model.pretrained_strict = options.pretrained_strict == 1;
        const TierConfig& tier = select_tier(config, options.tier);
        // Data-parallel ranks, configured like torchrun; checked before anything is written.
        const dist::DistEnv ranks = dist::read_dist_env();
        dist::require_c10d(ranks);
        dist::check_world_fits(config, tier, ranks.world_size);
        for (const auto& [k, v] : tier.env) ::setenv(k.c_str(), v.c_str(), /*overwrite=*/0);
        const std::string run_dir =
            options.run_dir.empty() ? run_dir::default_for(options.config_path) : options.run_dir;
        // Held for the whole run: a restarted supervisor waits on it for a worker of its
        // predecessor, and two workers never train into one run directory.
        make_directories(run_dir);
        FileLock::Failure lock_failure{};
        std::string lock_detail;
        auto worker_lock =
            FileLock::try_acquire(run_dir::worker_lock(run_dir), &lock_failure, &lock_detail);
        if (!worker_lock && lock_failure == FileLock::Failure::held) {
            report_error("config",
                         fmt::format("another worker is training in {}{}", run_dir,
                                     lock_detail.empty() ? "" : " (pid " + lock_detail + ")"));
            return exit_code::config_error;
        }
        if (!worker_lock) {
            report_error("io", lock_detail);
            return exit_code::io_error;
        }
        Trainer trainer(config, tier, run_dir, channel.get(), ranks);
        const int code = trainer.run();
        if (channel) channel->flush(std::chrono::milliseconds(2000));
        return code;
    } catch (...) {
        const auto exit = error_exit(std::current_exception());
        report_error(exit.kind, exit.message);
        return exit.code;
    }
}

}  // namespace smartcash::train
