// What an optimizer step leaves behind between steps.
#pragma once

#include <torch/torch.h>

#include "common/config.hpp"

namespace smartcash::train {

/// Frees the gradient tensors of every parameter of `optimizer` (they become undefined), so they
/// do not stay resident through the next step's forward pass; the next backward pass allocates
/// them afresh. The next step is the same: a gradient accumulated into an undefined one is the
/// gradient itself (0 + g = g), and every parameter the optimizer updates receives a gradient in
/// every backward pass (each takes part in every forward pass), so the same parameters are
/// updated as when zero-filled gradients were kept.
void release_gradients(torch::optim::Optimizer& optimizer);

/// LibTorch's CPU allocations of 256 KiB and more come from the host block cache
/// (host_block_cache.hpp): mapped from the system (2 MiB-aligned, huge pages requested), and kept
/// in a cache of free blocks when freed, for the next tensor of the same size class. At
/// `Cleanup::extreme` (the minimal tier) the cache holds at most 576 MiB and returns the rest to
/// the system at once, so the resident set follows the live tensors; at the other levels it keeps
/// every freed block, so a step's activations reuse the previous step's pages instead of faulting
/// in fresh ones. $SMARTCASH_HOST_CACHE_MIB overrides the cap (a tuning knob for scripts/bench).
void apply_allocator_policy(Cleanup level);

}  // namespace smartcash::train
