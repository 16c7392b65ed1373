// The worker's own memory use, for progress reports and the epoch table.
#pragma once

#include <cstdint>

namespace smartcash::train {

struct ProcessMemory {
    std::uint64_t rss = 0;   ///< resident set size now (bytes)
    std::uint64_t peak = 0;  ///< high-water mark of the resident set (bytes)
};

/// Reads this process's resident memory (Linux: /proc/self/status; macOS: task info).
ProcessMemory read_process_memory();

/// Address-space size of this process in bytes (Linux VmSize; 0 where unknown).
std::uint64_t read_address_space();

}  // namespace smartcash::train
