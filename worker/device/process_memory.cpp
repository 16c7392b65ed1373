#include "worker/device/process_memory.hpp"

#include <cstdio>
#include <cstring>

#if defined(__APPLE__)
#include <mach/mach.h>

#include <atomic>

#include "common/macos_memory.hpp"
#endif

namespace smartcash::train {

#if defined(__linux__)
namespace {
std::uint64_t status_field_kib(const char* key) {
    std::FILE* f = std::fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    std::uint64_t value = 0;
    const std::size_t n = std::strlen(key);
    while (std::fgets(line, sizeof line, f)) {
        if (std::strncmp(line, key, n) == 0 && line[n] == ':') {
            unsigned long long kib = 0;
            if (std::sscanf(line + n + 1, "%llu", &kib) == 1) value = kib * 1024ull;
            break;
        }
    }
    std::fclose(f);
    return value;
}
}  // namespace

ProcessMemory read_process_memory() {
    return {status_field_kib("VmRSS"), status_field_kib("VmHWM")};
}

std::uint64_t read_address_space() { return status_field_kib("VmSize"); }

#elif defined(__APPLE__)
#if defined(TASK_VM_INFO_REV1_COUNT)
static_assert(TASK_VM_INFO_REV1_COUNT == macos::task_vm_info_rev1_count,
              "common/macos_memory.hpp's TASK_VM_INFO revisions differ from this SDK's");
#endif
#if defined(TASK_VM_INFO_REV3_COUNT)
static_assert(TASK_VM_INFO_REV3_COUNT == macos::task_vm_info_rev3_count,
              "common/macos_memory.hpp's TASK_VM_INFO revisions differ from this SDK's");
#endif

// phys_footprint, the measure the supervisor watches (proc_pid_rusage's ri_phys_footprint),
// MPS buffers included; common/macos_memory.cpp decides from the revision task_info() filled.
ProcessMemory read_process_memory() {
    static std::atomic<std::uint64_t> peak_seen{0};
    task_vm_info_data_t info{};
    mach_msg_type_number_t count = TASK_VM_INFO_COUNT;
    if (task_info(mach_task_self(), TASK_VM_INFO, reinterpret_cast<task_info_t>(&info), &count) !=
        KERN_SUCCESS)
        return {};
    macos::TaskVmInfo v;
    v.count = count;
    v.resident_size = info.resident_size;
    v.resident_size_peak = info.resident_size_peak;
#if defined(TASK_VM_INFO_REV1_COUNT)
    v.phys_footprint = info.phys_footprint;
#endif
#if defined(TASK_VM_INFO_REV3_COUNT)
    v.ledger_phys_footprint_peak = info.ledger_phys_footprint_peak;
#endif
    const macos::ProcessFootprint f = macos::process_footprint(v, peak_seen.load());
    std::uint64_t seen = peak_seen.load();
    while (f.peak > seen && !peak_seen.compare_exchange_weak(seen, f.peak)) {
    }
    return {f.now, f.peak};
}

std::uint64_t read_address_space() { return 0; }
#else
ProcessMemory read_process_memory() { return {}; }
std::uint64_t read_address_space() { return 0; }
#endif

}  // namespace smartcash::train
