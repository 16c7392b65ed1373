#include "common/macos_memory.hpp"

#include <algorithm>

namespace smartcash::macos {

std::optional<double> pressure_percent(long long level) {
    switch (level) {
        case pressure_level_normal:
            return 0.0;
        case pressure_level_warning:
            return 50.0;
        case pressure_level_critical:
            return critical_pressure_percent;
        default:
            return std::nullopt;
    }
}

std::optional<std::uint64_t> available_bytes(std::optional<long long> memorystatus_level,
                                             std::optional<std::uint64_t> memsize) {
    if (!memorystatus_level || !memsize || *memsize == 0) return std::nullopt;
    if (*memorystatus_level < 0 || *memorystatus_level > 100) return std::nullopt;
    const auto percent = static_cast<std::uint64_t>(*memorystatus_level);
    // Whole hundredths first, then the rest: no overflow for any memory size.
    return *memsize / 100 * percent + *memsize % 100 * percent / 100;
}

std::optional<double> mps_high_watermark_ratio(std::uint64_t limit,
                                               std::uint64_t recommended_max_working_set) {
    if (limit == 0 || recommended_max_working_set == 0) return std::nullopt;
    return std::clamp(static_cast<double>(limit) / static_cast<double>(recommended_max_working_set),
                      1e-6, mps_high_watermark_upper_bound);
}

ProcessFootprint process_footprint(const TaskVmInfo& info, std::uint64_t peak_seen) {
    if (info.count < task_vm_info_rev1_count)
        return {info.resident_size, std::max(info.resident_size_peak, info.resident_size)};
    ProcessFootprint f;
    f.now = info.phys_footprint;
    f.peak = std::max(peak_seen, f.now);
    if (info.count >= task_vm_info_rev3_count && info.ledger_phys_footprint_peak > 0)
        f.peak = std::max(f.peak, static_cast<std::uint64_t>(info.ledger_phys_footprint_peak));
    return f;
}

}  // namespace smartcash::macos
