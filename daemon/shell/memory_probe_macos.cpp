#ifdef __APPLE__

#include <libproc.h>
#include <mach/mach.h>
#include <sys/resource.h>
#include <sys/sysctl.h>

#include <vector>

#include "daemon/shell/memory_probe.hpp"

namespace smartcash::daemon {
namespace {

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
        int level = 0;
        size_t size = sizeof(level);
        if (sysctlbyname("kern.memorystatus_vm_pressure_level", &level, &size, nullptr, 0) == 0) {
            // 1 normal, 2 warning, 4 critical: mapped onto the percent scale the config uses.
            r.pressure = level >= 4 ? 100.0 : level >= 2 ? 50.0 : 0.0;
        }
        vm_statistics64_data_t vm{};
        mach_msg_type_number_t count = HOST_VM_INFO64_COUNT;
        if (host_statistics64(mach_host_self(), HOST_VM_INFO64,
                              reinterpret_cast<host_info64_t>(&vm), &count) == KERN_SUCCESS) {
            vm_size_t page = 0;
            host_page_size(mach_host_self(), &page);
            r.available = (static_cast<std::uint64_t>(vm.free_count) + vm.inactive_count +
                           vm.purgeable_count) *
                          page;
        }
        return r;
    }

    std::optional<std::uint64_t> oom_kill_count() override { return std::nullopt; }
};

}  // namespace

std::unique_ptr<MemoryProbe> make_memory_probe() { return std::make_unique<MacMemoryProbe>(); }

}  // namespace smartcash::daemon

#endif  // __APPLE__
