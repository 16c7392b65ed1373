// Reading the worker's memory and the system's, behind one interface: /proc on Linux
// (memory_probe_linux.cpp), proc_pid_rusage and the pressure sysctl on macOS
// (memory_probe_macos.cpp). Each file compiles only on its own system.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

namespace smartcash::daemon {

struct MemoryReading {
    std::uint64_t rss = 0;  ///< resident memory of the process and all its descendants
    std::optional<std::uint64_t> available;  ///< system memory still available
    std::optional<double> pressure;          ///< percent; Linux PSI "some avg10", macOS level
};

class MemoryProbe {
  public:
    virtual ~MemoryProbe() = default;
    /// One reading for the process tree rooted at `pid`. Never throws: what cannot be read is
    /// left empty (rss 0 for a process that is gone).
    virtual MemoryReading read(int pid) = 0;
    /// How many times the kernel's cgroup OOM killer fired in the supervisor's cgroup (the
    /// worker shares it), or nullopt where that is not visible.
    virtual std::optional<std::uint64_t> oom_kill_count() = 0;
};

/// The probe for this operating system.
std::unique_ptr<MemoryProbe> make_memory_probe();

}  // namespace smartcash::daemon
