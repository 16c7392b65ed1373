#include "worker/device/process_memory.hpp"

#include <cstdio>
#include <cstring>

#if defined(__APPLE__)
#include <mach/mach.h>
#include <sys/resource.h>
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
ProcessMemory read_process_memory() {
    ProcessMemory m;
    mach_task_basic_info info{};
    mach_msg_type_number_t count = MACH_TASK_BASIC_INFO_COUNT;
    if (task_info(mach_task_self(), MACH_TASK_BASIC_INFO, reinterpret_cast<task_info_t>(&info),
                  &count) == KERN_SUCCESS) {
        m.rss = info.resident_size;
        m.peak = info.resident_size_max;
    }
    return m;
}

std::uint64_t read_address_space() { return 0; }
#else
ProcessMemory read_process_memory() { return {}; }
std::uint64_t read_address_space() { return 0; }
#endif

}  // namespace smartcash::train
