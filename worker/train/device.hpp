// Which device a tier trains on, and what the worker does to it between epochs.
#pragma once

#include <cstdint>
#include <string>

#include <torch/torch.h>

#include "common/config.hpp"

namespace smartcash::train {

/// True when this LibTorch build and this machine can run on `device` (auto: always).
bool device_available(Device device);

/// The concrete device for a tier: auto picks cuda, then mps, then cpu.
torch::Device resolve_device(Device device);

/// Short name of a concrete device ("cpu", "cuda", "mps").
std::string device_name(const torch::Device& device);

/// Applies the tier's thread count to LibTorch's intra- and inter-op pools.
void apply_threads(int threads);

/// Bytes currently allocated on the device by LibTorch (0 on CPU or when unknown).
std::uint64_t device_allocated_bytes(const torch::Device& device);

/// Returns cached device blocks to the system and trims the C heap. Stronger cleanup levels
/// also synchronise the device first.
void release_memory(const torch::Device& device, Cleanup level);

}  // namespace smartcash::train
