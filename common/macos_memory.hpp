// What the supervisor and the worker make of macOS's memory readings, as pure functions that
// compile and are tested on every system. The macOS-only files read the kernel
// (daemon/shell/memory_probe_macos.cpp: sysctl; worker/device/process_memory.cpp: task_info) and
// hand the raw numbers to these, so every decision about them is visible to the tests on Linux.
// Where each number comes from is cited next to it: Apple's headers, man pages and XNU sources.
#pragma once

#include <cstdint>
#include <optional>

namespace smartcash::macos {

// ---- the system (the supervisor's memory probe) ----

/// kern.memorystatus_vm_pressure_level as the sysctl returns it. XNU's handler
/// (bsd/kern/kern_memorystatus_notify.c, sysctl_memorystatus_vm_pressure_level) passes the
/// kernel's level through convert_internal_pressure_level_to_dispatch_level(), so the values
/// are sys/event.h's NOTE_MEMORYSTATUS_PRESSURE_NORMAL / _WARN / _CRITICAL (the same numbers as
/// dispatch/source.h's DISPATCH_MEMORYPRESSURE_NORMAL / _WARN / _CRITICAL): 1, 2 and 4. The
/// kernel's "urgent" level reads as warn; nothing else is ever returned.
inline constexpr int pressure_level_normal = 1;
inline constexpr int pressure_level_warning = 2;
inline constexpr int pressure_level_critical = 4;

/// The pressure level on the percent scale of supervisor.pressure_threshold (Linux's PSI
/// "some avg10"): normal 0, warning 50, critical 100. Any other value is unknown (nullopt),
/// never taken for normal.
std::optional<double> pressure_percent(long long level);

/// Where the percent scale puts macOS's critical level: a reading at or above it means the
/// system said its memory was critical (the supervisor latches it for the launch).
inline constexpr double critical_pressure_percent = 100.0;

/// The system's available memory as jetsam counts it: kern.memorystatus_level (the percent of
/// memory available, `memory_pressure`'s "System-wide memory free percentage"; XNU computes it
/// in vm_pressure_response() as memorystatus_available_pages * 100 / total pages) times
/// hw.memsize. Unknown (nullopt) when either reading is missing or the percent is outside
/// 0..100.
std::optional<std::uint64_t> available_bytes(std::optional<long long> memorystatus_level,
                                             std::optional<std::uint64_t> memsize);

// ---- the MPS allocator (the worker's device_memory_limit) ----

/// PyTorch's bound on the MPS high watermark ratio (MPSAllocator.h,
/// default_high_watermark_upper_bound): at most twice the recommended working set.
inline constexpr double mps_high_watermark_upper_bound = 2.0;

/// The MPS high watermark ratio that caps the allocator at `limit` bytes. PyTorch's MPS
/// allocator multiplies the ratio by the GPU's recommendedMaxWorkingSetSize (Metal's working-set
/// budget for the device, below the unified memory), and reads 0 as "no limit", so the ratio is
/// kept in (0, 2]. Unknown (nullopt) without a limit or without a recommended working set
/// (then nothing can be capped).
std::optional<double> mps_high_watermark_ratio(std::uint64_t limit,
                                               std::uint64_t recommended_max_working_set);

// ---- one process (the worker's own report) ----

/// TASK_VM_INFO's size in natural_t words at each revision (mach/task_info.h, packed to 4):
/// phys_footprint arrived with rev1 (TASK_VM_INFO_REV1_COUNT), ledger_phys_footprint_peak with
/// rev3 (TASK_VM_INFO_REV3_COUNT). task_info() says in its count argument how much it filled.
inline constexpr std::uint32_t task_vm_info_rev1_count = 38;
inline constexpr std::uint32_t task_vm_info_rev3_count = 84;

/// The fields of one task_info(TASK_VM_INFO) call that decide the worker's memory figure.
struct TaskVmInfo {
    std::uint32_t count = 0;  ///< natural_t words task_info() filled in
    std::uint64_t resident_size = 0;
    std::uint64_t resident_size_peak = 0;
    std::uint64_t phys_footprint = 0;
    std::int64_t ledger_phys_footprint_peak = 0;
};

/// A process's memory now and its high-water mark, in bytes.
struct ProcessFootprint {
    std::uint64_t now = 0;
    std::uint64_t peak = 0;
};

/// The process's memory on the measure the supervisor watches (proc_pid_rusage's
/// ri_phys_footprint, the same ledger): phys_footprint, which holds what MPS and Metal keep for
/// the process and leaves out clean file pages that resident_size counts. The peak is the
/// kernel's ledger_phys_footprint_peak where this macOS fills it (rev3), else the highest
/// footprint seen so far (`peak_seen`, kept by the caller). A kernel too old for
/// phys_footprint (before rev1) leaves resident_size as the only figure.
ProcessFootprint process_footprint(const TaskVmInfo& info, std::uint64_t peak_seen);

}  // namespace smartcash::macos
