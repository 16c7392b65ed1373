// A CPU allocator for LibTorch that maps large tensors from the system itself and keeps a bounded
// cache of freed blocks for reuse, for the minimal tier (`cleanup: extreme`).
//
// The aim is a resident set that follows the live tensors (as when every large block is returned
// to the system on free) without paying fresh page faults for every activation of every step.
// glibc's malloc, left alone, serves large activations from its heap after the first frees and
// keeps that memory; fixing its mmap threshold returns it, but then each recomputed activation is
// a fresh mapping whose pages fault in one by one, and a training step took ten times as long.
// Here a freed block of 256 KiB or more goes to a cache of size classes (at most 1/8 apart) while
// the cache holds less than its cap, and the next allocation of that class takes it back: the
// shapes of one step recur in the next, and in activation checkpointing's recomputation. Blocks
// that do not fit the cap go back to the system at once. Smaller allocations are aligned
// heap blocks (posix_memalign, 64 bytes, as LibTorch's default allocator makes them).
#pragma once

#include <cstddef>
#include <cstdint>

namespace smartcash::train {

struct HostBlockCacheStats {
    bool installed = false;
    std::uint64_t cap = 0;     ///< bytes the cache of free blocks may hold
    std::uint64_t cached = 0;  ///< bytes in free blocks kept for reuse now
    std::uint64_t live = 0;    ///< bytes in blocks handed out and not yet freed
    std::uint64_t hits = 0;    ///< allocations served from the cache
    std::uint64_t maps = 0;    ///< allocations mapped from the system
    std::uint64_t unmaps = 0;  ///< blocks returned to the system
};

/// The default cap of the cache of free blocks (the minimal tier's): at full size (EfficientNet-B4,
/// 640 px, micro-batch 1) 256 MiB gave 0.38x the cpu tier's peak RSS at 3.3x its step time,
/// 576 MiB 0.49x at 1.8x to 2.0x, 640 MiB 0.51x at 1.7x (README, Performance).
constexpr std::size_t default_host_cache_cap = std::size_t{576} << 20;

/// Makes the block cache LibTorch's CPU allocator for the rest of the process (tensors that exist
/// keep their own allocator). `cap` bytes of free blocks are kept at most; a second call only
/// changes the cap. An allocation the system refuses empties the cache and tries once more, then
/// throws std::bad_alloc (the fault contract's out-of-memory).
void install_host_block_cache(std::size_t cap = default_host_cache_cap);

/// Returns every cached free block to the system.
void release_host_block_cache();

HostBlockCacheStats host_block_cache_stats();

/// The size class a request of `n` bytes is served from (exposed for tests): 64 KiB steps up to
/// 1 MiB, then steps of an eighth of the power of two below `n`.
std::size_t host_block_class(std::size_t n);

}  // namespace smartcash::train
