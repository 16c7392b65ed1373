// What the supervisor does once before it serves and launches: wait for a worker an earlier
// supervisor left running, and ask the worker which devices it can use.
#pragma once

#include <functional>
#include <string>

#include "common/config.hpp"
#include "daemon/rules/decision.hpp"
#include "daemon/shell/event_text.hpp"

namespace smartcash::daemon {

using LogLine = std::function<void(const std::string&, EventWeight)>;

/// A worker of a supervisor that was killed keeps training or stopping; lets it finish (up to
/// `grace_s`, then kills it) before a new one starts on the same checkpoints. The worker holds
/// RUN_DIR/worker.lock for its life, so this needs no process table.
void wait_for_leftover_worker(const std::string& run_dir, double grace_s, const LogLine& log);

/// Which devices the worker can use, asked once and only when a tier names an accelerator
/// (cpu and auto tiers need no answer); logged.
DevicePresence devices_for(const Config& config, const std::string& worker_path,
                           const LogLine& log);

}  // namespace smartcash::daemon
