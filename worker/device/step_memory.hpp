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

/// At `Cleanup::extreme` (the minimal tier), with glibc: fixes malloc's mmap threshold at its
/// initial 128 KiB. glibc otherwise raises the threshold (up to 32 MiB) as large blocks are freed,
/// then serves activations from its heap and keeps that memory after they are freed; fixed, every
/// large tensor is mapped on allocation and returned to the system when freed, so the resident
/// set follows the live tensors (at the cost of fresh page faults for each). Elsewhere: nothing.
void apply_allocator_policy(Cleanup level);

}  // namespace smartcash::train
