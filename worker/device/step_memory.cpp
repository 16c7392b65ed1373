#include "worker/device/step_memory.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace smartcash::train {

void release_gradients(torch::optim::Optimizer& optimizer) {
    for (auto& group : optimizer.param_groups())
        for (auto& p : group.params())
            if (p.grad().defined()) p.mutable_grad().reset();
}

void apply_allocator_policy(Cleanup level) {
#if defined(__GLIBC__)
    if (level == Cleanup::extreme) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#else
    (void)level;
#endif
}

}  // namespace smartcash::train
