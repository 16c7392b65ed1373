#ifdef __APPLE__

#include <libproc.h>
#include <sys/resource.h>
#include <sys/sysctl.h>

#include <optional>
#include <vector>

#include "common/macos_memory.hpp"
#include "daemon/shell/memory_probe.hpp"

namespace smartcash::daemon {
namespace {

// An int sysctl (kern.memorystatus_vm_pressure_level, kern.memorystatus_level: both
// CTLTYPE_INT in XNU's bsd/kern/kern_memorystatus*.c, readable without privileges on macOS).
std::optional<long long> sysctl_int(const char* name) {
    int value = 0;
    size_t size = sizeof(value);
    if (sysctlbyname(name, &value, &size, nullptr, 0) != 0 || size != sizeof(value))
        return std::nullopt;
    return value;
}

std::uint64_t footprint(int pid) {
    rusage_info_v2 info{};
    if (proc_pid_rusage(pid, RUSAGE_INFO_V2, reinterpret_cast<rusage_info_t*>(&info)) != 0)
        return 0;
    // phys_footprint is what the kernel's memory limits and "Killed: 9" look at, unified GPU
    // memory (MPS) included.
    return info.ri_phys_footprint;
}

class MacMemoryProbe : public MemoryProbe {
  public:
    MemoryReading read(int pid) override {
        MemoryReading r;
        if (pid > 0) {
            std::vector<int> todo{pid};
            int guard = 0;
            while (!todo.empty() && guard++ < 4096) {
                const int p = todo.back();
                todo.pop_back();
                r.rss += footprint(p);
                std::vector<pid_t> kids(256);
                const int n = proc_listchildpids(p, kids.data(),
                                                 static_cast<int>(kids.size() * sizeof(pid_t)));
                const int listed =
                    n < static_cast<int>(kids.size()) ? n : static_cast<int>(kids.size());
                for (int i = 0; i < listed; ++i) todo.push_back(kids[static_cast<std::size_t>(i)]);
            }
        }
        // The readings only: what they mean is decided in common/macos_memory.cpp, tested
        // everywhere.
        if (auto level = sysctl_int("kern.memorystatus_vm_pressure_level"))
            r.pressure = macos::pressure_percent(*level);
        std::optional<std::uint64_t> memsize;
        std::uint64_t bytes = 0;
        size_t size = sizeof(bytes);
        if (sysctlbyname("hw.memsize", &bytes, &size, nullptr, 0) == 0 && size == sizeof(bytes))
            memsize = bytes;
        r.available = macos::available_bytes(sysctl_int("kern.memorystatus_level"), memsize);
        return r;
    }

    std::optional<std::uint64_t> oom_kill_count() override { return std::nullopt; }
};

}  // namespace

std::unique_ptr<MemoryProbe> make_memory_probe() { return std::make_unique<MacMemoryProbe>(); }

}  // namespace smartcash::daemon

#endif  // __APPLE__
