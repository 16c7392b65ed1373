// Turning dataset samples into tensors, and the deterministic data order of an epoch.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "worker/data/sample.hpp"

namespace smartcash::train {

struct Batch {
    torch::Tensor images;  ///< [B, 3, S, S] float in [0, 1]
    torch::Tensor
        targets;  ///< [N, 6]: image index in batch, global class, cx, cy, w, h (normalised)
};

/// Stacks letterboxed RGB samples into a batch (CPU tensors).
Batch collate(const std::vector<data::Sample>& samples);

/// The same batch with its images on `device`: the pixels travel as bytes (a quarter of the
/// float32 size) and become float there. On the CPU it is exactly collate(samples).
Batch collate(const std::vector<data::Sample>& samples, const torch::Device& device);

/// Mixes values into a 64-bit seed (splitmix64 steps); the same inputs give the same seed on every
/// platform, which is what makes data order and augmentation reproducible across resumes.
std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b, std::uint64_t c = 0);

/// The permutation of [0, n) used in `epoch` of a run seeded with `seed`.
std::vector<std::int64_t> epoch_order(std::size_t n, std::uint64_t seed, int epoch);

}  // namespace smartcash::train
