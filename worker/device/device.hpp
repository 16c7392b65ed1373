// Which devices this LibTorch can train on (the worker is the only judge of that), and what the
// worker does with a device's memory: reading it, capping it, giving cached blocks back.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "common/config.hpp"
#include "common/devices_report.hpp"

namespace smartcash::train {

/// Whether CUDA and MPS can be used by this LibTorch build on this machine, and why not where
/// they cannot. Probed once per process; every device decision of the worker goes through it.
const DevicesReport& devices();

/// True when this LibTorch build and this machine can run on `device` (cpu and auto: always).
bool device_available(Device device);

/// The concrete device for a tier: auto picks cuda, then mps, then cpu.
torch::Device resolve_device(Device device);

/// Short name of a concrete device ("cpu", "cuda", "mps").
std::string device_name(const torch::Device& device);

/// Applies the tier's thread count to LibTorch's intra- and inter-op pools.
void apply_threads(int threads);

/// Seeds the CPU generator and, on an accelerator, the device's own generator, so that random
/// draws on the device depend only on `seed`.
void seed_generators(std::uint64_t seed, const torch::Device& device);

/// Device memory as the device's allocator counts it; all 0 on the CPU or where unknown.
struct DeviceMemory {
    std::uint64_t allocated = 0;       ///< bytes in live tensors
    std::uint64_t reserved = 0;        ///< bytes taken from the driver (CUDA: the caching
                                       ///< allocator's segments; MPS: the Metal driver's total)
    std::uint64_t peak_allocated = 0;  ///< highest `allocated` so far, where the allocator keeps
                                       ///< it (CUDA); 0 otherwise
    std::uint64_t peak_reserved = 0;   ///< highest `reserved` so far (CUDA); 0 otherwise
};

/// Reads the allocator's figures for `device`.
DeviceMemory device_memory(const torch::Device& device);

/// Caps what the device's allocator may hold at `limit` bytes (0: no cap), so that going past it
/// is an ordinary out-of-memory error of that allocator: on CUDA a memory fraction of the
/// device's total, on MPS a fraction of the recommended working set (the high watermark).
/// Returns a line for the log saying what was done, "" when nothing was asked.
std::string limit_device_memory(const torch::Device& device, std::uint64_t limit);

/// Returns cached device blocks to the driver, the host block cache's free blocks to the system
/// and trims the C heap. Stronger cleanup levels also synchronise the device first.
void release_memory(const torch::Device& device, Cleanup level);

}  // namespace smartcash::train
