#include "worker/train/fault_hooks.hpp"

#include <fmt/core.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "common/units.hpp"
#include "worker/device/process_memory.hpp"

namespace smartcash::train {

FaultHooks FaultHooks::from_environment() {
    FaultHooks hooks;
    if (const char* at = std::getenv("SMARTCASH_TEST_RLIMIT_AS_AT_STEP")) {
        hooks.rlimit_at_step = std::atoll(at);
#if defined(__GLIBC__)
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
    }
    if (const char* h = std::getenv("SMARTCASH_TEST_RLIMIT_AS_HEADROOM"))
        hooks.rlimit_headroom = parse_size(h);
    if (const char* at = std::getenv("SMARTCASH_TEST_SNAPSHOT_OOM_AT_STEP"))
        hooks.snapshot_oom_at_step = std::atoll(at);
    if (const char* h = std::getenv("SMARTCASH_TEST_NONFINITE_LOSS")) {
        long long from = -1, count = 0;
        std::sscanf(h, "%lld:%lld", &from, &count);
        hooks.nonfinite_from = from;
        hooks.nonfinite_count = count;
    }
    if (const char* at = std::getenv("SMARTCASH_TEST_FREEZE_AT_STEP"))
        hooks.freeze_at_step = std::atoll(at);
    return hooks;
}

void FaultHooks::freeze() { std::raise(SIGSTOP); }

std::string FaultHooks::limit_address_space_at(std::int64_t step) {
    if (rlimit_at_step < 0 || step != rlimit_at_step) return {};
    rlimit_at_step = -1;
    struct rlimit lim {};
    lim.rlim_cur = lim.rlim_max = read_address_space() + rlimit_headroom;
    setrlimit(RLIMIT_AS, &lim);
    return fmt::format("address space limited to {}", format_size(lim.rlim_cur));
}

}  // namespace smartcash::train
