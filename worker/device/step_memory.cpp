#include "worker/device/step_memory.hpp"

#include <cstdlib>

#include "worker/device/host_block_cache.hpp"

namespace smartcash::train {

void release_gradients(torch::optim::Optimizer& optimizer) {
    for (auto& group : optimizer.param_groups())
        for (auto& p : group.params())
            if (p.grad().defined()) p.mutable_grad().reset();
}

void apply_allocator_policy(Cleanup level) {
    if (level != Cleanup::extreme) return;
    std::size_t cap = default_host_cache_cap;
    if (const char* mib = std::getenv("SMARTCASH_HOST_CACHE_MIB"); mib && *mib)
        cap = static_cast<std::size_t>(std::strtoull(mib, nullptr, 10)) << 20;
    install_host_block_cache(cap);
}

}  // namespace smartcash::train
