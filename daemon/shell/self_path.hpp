// The running program's own path, from the operating system: /proc/self/exe on Linux,
// _NSGetExecutablePath on macOS. smartcashd finds the worker next to itself with it.
#pragma once

#include <optional>
#include <string>

namespace smartcash::daemon {

/// Absolute path of the running executable, or nullopt where it cannot be known.
std::optional<std::string> self_executable_path();

/// The worker executable to use: `flag` if given, else $SMARTCASH_WORKER, else
/// smartcash-worker next to this program's own executable.
std::string resolve_worker_path(const std::string& flag);

}  // namespace smartcash::daemon
