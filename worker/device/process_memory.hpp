// The worker's own memory use, for progress reports and the epoch table.
#pragma once

#include <cstdint>

namespace smartcash::train {

/// The worker's memory on the measure the supervisor watches, so that both report the same
/// figure: the resident set on Linux (VmRSS, VmHWM), the physical footprint on macOS
/// (phys_footprint, which counts what MPS and Metal hold for the process and leaves out clean
/// file pages; common/macos_memory.hpp).
struct ProcessMemory {
    std::uint64_t rss = 0;   ///< memory now (bytes): Linux resident set, macOS phys_footprint
    std::uint64_t peak = 0;  ///< its high-water mark (bytes)
};

/// Reads this process's memory (Linux: /proc/self/status; macOS: task_info TASK_VM_INFO).
ProcessMemory read_process_memory();

/// Address-space size of this process in bytes (Linux VmSize; 0 where unknown).
std::uint64_t read_address_space();

}  // namespace smartcash::train
