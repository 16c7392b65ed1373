// macOS's memory readings as the supervisor and the worker read them, checked on every system
// with readings recorded on real Macs (each says where it comes from) and with the limits of the
// kernel's interfaces (mach/task_info.h, XNU's sysctl handlers).
#include "common/macos_memory.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>

namespace smartcash::macos {
namespace {

constexpr std::uint64_t MiB = 1ull << 20;
constexpr std::uint64_t GiB = 1ull << 30;

TEST(MacosMemory, PressureLevelsMapOntoThePercentScale) {
    // `sysctl kern.memorystatus_vm_pressure_level` on a Mac with OS X 10.10.2 read 1 under light
    // load and 4 under heavy load (Ask Different, "How is the Y value for the Memory Pressure
    // graph in Activity Monitor calculated"); 2 is NOTE_MEMORYSTATUS_PRESSURE_WARN.
    EXPECT_EQ(pressure_percent(1), 0.0);
    EXPECT_EQ(pressure_percent(2), 50.0);
    EXPECT_EQ(pressure_percent(4), 100.0);
    EXPECT_EQ(pressure_percent(pressure_level_critical), critical_pressure_percent);
}

TEST(MacosMemory, PressureLevelsTheSysctlNeverReturnsAreUnknown) {
    // 0 and 3 are the kernel's own enum (kVMPressureNormal, kVMPressureCritical), which the
    // sysctl converts before returning; anything but 1, 2 or 4 is not a reading to act on.
    for (long long level : {0LL, 3LL, 5LL, 8LL, -1LL, 1LL << 40}) {
        EXPECT_EQ(pressure_percent(level), std::nullopt) << level;
    }
}

TEST(MacosMemory, AvailableIsTheMemorystatusLevelOfMemsize) {
    // A 16 GiB arm64 Mac on macOS 26.6.2 (25G83) read kern.memorystatus_level 58 ("System-wide
    // memory free percentage: 58%" from memory_pressure) at pressure level 1, with 132 MiB of
    // free pages and 4.1 GiB in the compressor (QuaanNguyen/q.it, the research note of its issue
    // 12, "Live memory pressure and free RAM on macOS"). hw.memsize of a 16 GiB Mac is
    // 17179869184.
    EXPECT_EQ(available_bytes(58, 17179869184ull), 9964324126ull);  // 58% of 16 GiB, rounded down
    EXPECT_EQ(available_bytes(100, 16 * GiB), 16 * GiB);
    EXPECT_EQ(available_bytes(0, 16 * GiB), 0u);
    // The biggest memory a Mac has shipped with (512 GiB) does not overflow.
    EXPECT_EQ(available_bytes(99, 512 * GiB), 512 * GiB / 100 * 99 + 512 * GiB % 100 * 99 / 100);
}

TEST(MacosMemory, AvailableIsUnknownWithoutBothReadings) {
    EXPECT_EQ(available_bytes(std::nullopt, 16 * GiB), std::nullopt);
    EXPECT_EQ(available_bytes(58, std::nullopt), std::nullopt);
    EXPECT_EQ(available_bytes(58, 0), std::nullopt);
    EXPECT_EQ(available_bytes(-1, 16 * GiB), std::nullopt);
    EXPECT_EQ(available_bytes(101, 16 * GiB), std::nullopt);
}

TEST(MacosMemory, MpsWatermarkIsTheLimitOverTheRecommendedWorkingSet) {
    // ggml_metal_init logs recommendedMaxWorkingSetSize = 11453.25 MB (11453251584 bytes) on
    // 16 GB Apple silicon Macs (llama.cpp's CI runs); PyTorch's default ratio 1.7 of it is the
    // "max allowed: 18.13 GB" of its out-of-memory message on a 16 GB M1 (pinokio issue 941).
    constexpr std::uint64_t recommended = 11453251584ull;
    EXPECT_NEAR(1.7 * static_cast<double>(recommended) / GiB, 18.13, 0.005);
    const auto ratio = mps_high_watermark_ratio(8 * GiB, recommended);
    ASSERT_TRUE(ratio);
    EXPECT_NEAR(*ratio, 8.0 * GiB / recommended, 1e-12);
    // Past twice the working set PyTorch refuses the ratio: capped at 2.
    EXPECT_EQ(mps_high_watermark_ratio(64 * GiB, recommended), 2.0);
    // A ratio of 0 would mean "no limit": a tiny limit stays a (tiny) limit.
    const auto tiny = mps_high_watermark_ratio(1, recommended);
    ASSERT_TRUE(tiny);
    EXPECT_GT(*tiny, 0.0);
}

TEST(MacosMemory, MpsWatermarkNeedsALimitAndAWorkingSet) {
    EXPECT_EQ(mps_high_watermark_ratio(0, 11453251584ull), std::nullopt);
    // A device that reports no working set cannot be capped by a ratio of it.
    EXPECT_EQ(mps_high_watermark_ratio(8 * GiB, 0), std::nullopt);
}

TEST(MacosMemory, TaskVmInfoRevisionsMatchTheHeader) {
    // mach/task_info.h: REV0 is 36 words (no phys_footprint), REV1 + 2 (phys_footprint), REV2 + 4
    // (min/max address), REV3 + 42 (21 ledgers, the first ledger_phys_footprint_peak).
    EXPECT_EQ(task_vm_info_rev1_count, 36u + 2u);
    EXPECT_EQ(task_vm_info_rev3_count, task_vm_info_rev1_count + 4u + 42u);
}

TEST(MacosMemory, WorkerReportsPhysFootprintNotResidentSize) {
    // An app on an Apple silicon Mac with models memory-mapped: 1414 MB resident against a
    // phys_footprint of 195 MB, the figure /usr/bin/footprint and Activity Monitor's "Memory"
    // column show (AutoPTZ/autoptz pull request 77). The supervisor watches phys_footprint, so the
    // worker reports the same measure.
    TaskVmInfo info;
    info.count = task_vm_info_rev3_count + 5;  // a current macOS fills every revision
    info.resident_size = 1414 * MiB;
    info.resident_size_peak = 1414 * MiB;
    info.phys_footprint = 195 * MiB;
    info.ledger_phys_footprint_peak = static_cast<std::int64_t>(195 * MiB);
    const ProcessFootprint f = process_footprint(info, 0);
    EXPECT_EQ(f.now, 195 * MiB);
    EXPECT_EQ(f.peak, 195 * MiB);
}

// The cases below are built to check the revision guard, not recorded.
TEST(MacosMemory, PeakIsTheKernelsLedgerWhereTheRevisionHasIt) {
    TaskVmInfo info;
    info.count = task_vm_info_rev3_count;
    info.resident_size = 1 * GiB;
    info.resident_size_peak = 3 * GiB;
    info.phys_footprint = 2 * GiB;
    info.ledger_phys_footprint_peak = static_cast<std::int64_t>(5 * GiB);
    EXPECT_EQ(process_footprint(info, 0).peak, 5 * GiB);
    EXPECT_EQ(process_footprint(info, 0).now, 2 * GiB);
}

TEST(MacosMemory, PeakIsTheHighestFootprintSeenBeforeRev3) {
    TaskVmInfo info;
    info.count = task_vm_info_rev3_count - 1;  // ledger_phys_footprint_peak not filled
    info.resident_size = 1 * GiB;
    info.resident_size_peak = 9 * GiB;
    info.phys_footprint = 2 * GiB;
    info.ledger_phys_footprint_peak = static_cast<std::int64_t>(7 * GiB);  // stale memory
    EXPECT_EQ(process_footprint(info, 0).peak, 2 * GiB);
    EXPECT_EQ(process_footprint(info, 3 * GiB).peak, 3 * GiB);
    // A negative ledger (an error) is no peak either.
    info.count = task_vm_info_rev3_count;
    info.ledger_phys_footprint_peak = -1;
    EXPECT_EQ(process_footprint(info, 3 * GiB).peak, 3 * GiB);
}

TEST(MacosMemory, ResidentSizeIsTheOnlyFigureBeforeRev1) {
    TaskVmInfo info;
    info.count = task_vm_info_rev1_count - 1;  // phys_footprint not filled
    info.resident_size = 1 * GiB;
    info.resident_size_peak = 4 * GiB;
    info.phys_footprint = 2 * GiB;
    const ProcessFootprint f = process_footprint(info, 0);
    EXPECT_EQ(f.now, 1 * GiB);
    EXPECT_EQ(f.peak, 4 * GiB);
}

}  // namespace
}  // namespace smartcash::macos
