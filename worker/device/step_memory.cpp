#include "worker/device/step_memory.hpp"

#include <cstdlib>
#include <limits>

#include "worker/device/host_block_cache.hpp"

namespace smartcash::train {

void release_gradients(torch::optim::Optimizer& optimizer) {
    for (auto& group : optimizer.param_groups())
        for (auto& p : group.params())
            if (p.grad().defined()) p.mutable_grad().reset();
}

void apply_allocator_policy(Cleanup level) {
    // Below `extreme`, every freed block is kept: the next step takes the same shapes back, so
    // after the first step no activation faults its pages in again (glibc's malloc keeps only
    // part of them and hands the rest back and forth with the system every step). A block is
    // mapped only when its size class has no free one, so the cache and the live tensors together
    // never hold more blocks of a class than were once live at the same time; release_memory()
    // gives the cache back.
    std::size_t cap = level == Cleanup::extreme ? default_host_cache_cap
                                                : std::numeric_limits<std::size_t>::max();
    if (const char* mib = std::getenv("SMARTCASH_HOST_CACHE_MIB"); mib && *mib)
        cap = static_cast<std::size_t>(std::strtoull(mib, nullptr, 10)) << 20;
    install_host_block_cache(cap);
}

}  // namespace smartcash::train
