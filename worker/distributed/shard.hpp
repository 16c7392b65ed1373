// Which images of an optimizer step a rank trains on. A step covers the global positions
// [first, first + E) of the epoch's order; rank r of W takes the contiguous slice
// [first + r*E/W, first + (r+1)*E/W). The slices of all ranks are disjoint and cover the step, and
// each image keeps the augmentation seed of its global position, so W ranks see exactly the
// images (and augmentations) that one process would.
#pragma once

#include <cstdint>

namespace smartcash::dist {

struct Shard {
    std::int64_t begin = 0;  ///< first global position in the epoch's order
    std::int64_t end = 0;    ///< one past the last
    std::int64_t size() const { return end - begin; }
};

/// The slice of the step that starts at global position `first`, with `effective` images, that
/// rank `rank` of `world` takes. One process (world 1) takes the whole step.
inline Shard step_shard(std::int64_t first, std::int64_t effective, int rank, int world) {
    return {first + effective * rank / world, first + effective * (rank + 1) / world};
}

}  // namespace smartcash::dist
