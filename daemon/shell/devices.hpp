// Which accelerators the worker can use, as the worker itself says: the supervisor runs
// `smartcash-worker devices --json` once at start and never guesses from /dev or the CPU type
// (a machine with an NVIDIA driver may have a CPU-only LibTorch; a Mac's LibTorch may lack MPS).
#pragma once

#include <chrono>
#include <string>

#include "daemon/rules/decision.hpp"

namespace smartcash::daemon {

/// Asks the worker. When it cannot be asked (it does not start, hangs past `timeout`, prints
/// something else), every accelerator is taken as unusable with the reason: cpu and auto tiers
/// still run, and a tier that needs a device is skipped with that reason in the journal.
DevicePresence ask_worker_for_devices(const std::string& worker_path,
                                      std::chrono::milliseconds timeout);

}  // namespace smartcash::daemon
