// The run directory layout (see README "Run directory"). Paths only; no I/O.
#pragma once

#include <filesystem>
#include <string>

namespace smartcash::run_dir {

inline std::string config(const std::string& d) { return d + "/config.yaml"; }
inline std::string state(const std::string& d) { return d + "/state.json"; }
inline std::string events(const std::string& d) { return d + "/events.jsonl"; }
inline std::string socket(const std::string& d) { return d + "/control.sock"; }
inline std::string lock(const std::string& d) { return d + "/lock"; }
inline std::string worker_lock(const std::string& d) { return d + "/worker.lock"; }
inline std::string checkpoints(const std::string& d) { return d + "/checkpoints"; }
inline std::string logs(const std::string& d) { return d + "/logs"; }
inline std::string metrics(const std::string& d) { return d + "/metrics.jsonl"; }
inline std::string data(const std::string& d) { return d + "/data"; }

/// The run directory when none is given: runs/<config file name without extension>.
inline std::string default_for_config(const std::string& config_path) {
    return "runs/" + std::filesystem::path(config_path).stem().string();
}

}  // namespace smartcash::run_dir
