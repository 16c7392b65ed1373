// Device probing, seeding and memory handling for CPU, CUDA and MPS. Everything here compiles
// against LibTorch 1.13 and 2.x on Linux and macOS: MPS goes through ATen's MPS hooks (present
// in every 2.x build; they throw where MPS is missing, and are only called on an MPS device),
// CUDA code only where the LibTorch found at configure time has CUDA (SMARTCASH_WITH_CUDA).
#include "worker/device/device.hpp"

#include <ATen/Context.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <fmt/core.h>

#include <algorithm>
#include <cstdlib>
#include <typeinfo>

#include "common/macos_memory.hpp"
#include "common/units.hpp"
#include "worker/device/blas.hpp"
#include "worker/device/host_block_cache.hpp"
#include "worker/device/torch_version.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#elif defined(__APPLE__)
#include <malloc/malloc.h>
#endif

// The MPS hooks (emptyCache, setMemoryFraction, getCurrentAllocatedMemory,
// getDriverAllocatedMemory, deviceSynchronize, hasMPS) exist from 2.0 on;
// getRecommendedMaxMemory from 2.5 on.
#if SMARTCASH_TORCH_AT_LEAST(2, 0) && __has_include(<ATen/detail/MPSHooksInterface.h>)
#include <ATen/detail/MPSHooksInterface.h>
#define SMARTCASH_HAVE_MPS_HOOKS 1
#endif
// torch::mps::manual_seed (C++ API) exists from 2.1 on, on every platform.
#if SMARTCASH_TORCH_AT_LEAST(2, 1) && __has_include(<torch/mps.h>)
#include <torch/mps.h>
#define SMARTCASH_HAVE_TORCH_MPS 1
#endif
#if defined(SMARTCASH_WITH_CUDA) && __has_include(<c10/cuda/CUDACachingAllocator.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#define SMARTCASH_HAVE_CUDA_ALLOCATOR 1
#endif

namespace smartcash::train {

namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string torch_version_text() {
    return fmt::format("{}.{}.{}", TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH);
}

#if !defined(__APPLE__)
constexpr const char* no_mps = "this LibTorch has no MPS (MPS is the GPU backend of macOS builds)";
#elif defined(SMARTCASH_HAVE_MPS_HOOKS)
constexpr const char* no_mps = "this LibTorch was built without MPS";
#endif

DeviceStatus probe_cuda() {
    // Without a CUDA library loaded ATen answers through its CPU-only stand-in for the hooks.
    const at::CUDAHooksInterface& hooks = at::detail::getCUDAHooks();
    if (typeid(hooks) == typeid(at::CUDAHooksInterface)) {
#if defined(SMARTCASH_WITH_CUDA)
        return {false,
                "this LibTorch has CUDA, but its CUDA library (torch_cuda) is not loaded "
                "in the worker"};
#else
        return {false, "this LibTorch was built without CUDA"};
#endif
    }
    if (torch::cuda::device_count() > 0) return {true, {}};
    std::string why = "no CUDA device is visible";
    if (const char* visible = std::getenv("CUDA_VISIBLE_DEVICES"))
        why += fmt::format(" (CUDA_VISIBLE_DEVICES=\"{}\")", visible);
#if defined(SMARTCASH_HAVE_CUDA_ALLOCATOR)
    // The runtime's own reason (no driver, driver too old, no device).
    try {
        c10::cuda::device_count_ensure_non_zero();
    } catch (const c10::Error& e) {
        why += ": " + first_line(e.what_without_backtrace());
    }
#endif
    return {false, why};
}

DeviceStatus probe_mps() {
#if defined(SMARTCASH_HAVE_MPS_HOOKS)
    const at::MPSHooksInterface& hooks = at::detail::getMPSHooks();
    if (typeid(hooks) == typeid(at::MPSHooksInterface)) return {false, no_mps};
    if (hooks.hasMPS()) return {true, {}};
    return {false,
            "MPS is not available on this machine (it needs a Metal GPU and a macOS release this "
            "LibTorch supports)"};
#elif defined(__APPLE__)
    if (at::hasMPS()) return {true, {}};
    return {false, "MPS is not available on this machine, or this LibTorch was built without it"};
#else
    return {false, no_mps};
#endif
}

template <typename Probe>
DeviceStatus probe_safely(Probe probe) {
    try {
        return probe();
    } catch (const std::exception& e) {
        return {false, "probing failed: " + first_line(e.what())};
    }
}

#if defined(SMARTCASH_HAVE_CUDA_ALLOCATOR)
c10::DeviceIndex cuda_index(const torch::Device& device) {
    return device.has_index() ? device.index() : c10::cuda::current_device();
}
#endif

}  // namespace

const DevicesReport& devices() {
    static const DevicesReport report = [] {
        DevicesReport r;
        r.torch_version = torch_version_text();
        r.cuda = probe_safely(probe_cuda);
        r.mps = probe_safely(probe_mps);
        const BlasInfo& blas = blas_in_use();
        r.blas = blas.name;
        r.blas_library = blas.library;
        r.blas_reference = blas.reference;
        return r;
    }();
    return report;
}

bool device_available(Device device) {
    switch (device) {
        case Device::auto_:
        case Device::cpu:
            return true;
        case Device::cuda:
            return devices().cuda.usable;
        case Device::mps:
            return devices().mps.usable;
    }
    return false;
}

torch::Device resolve_device(Device device) {
    switch (device) {
        case Device::cuda:
            return torch::Device(torch::kCUDA);
        case Device::mps:
            return torch::Device(torch::kMPS);
        case Device::cpu:
            return torch::Device(torch::kCPU);
        case Device::auto_:
            if (devices().cuda.usable) return torch::Device(torch::kCUDA);
            if (devices().mps.usable) return torch::Device(torch::kMPS);
            return torch::Device(torch::kCPU);
    }
    return torch::Device(torch::kCPU);
}

std::string device_name(const torch::Device& device) {
    if (device.is_cuda()) return "cuda";
    if (device.is_mps()) return "mps";
    return "cpu";
}

void apply_threads(int threads) {
    torch::set_num_threads(threads);
    // The inter-op pool can only be sized once per process, before first use.
    static bool inter_op_set = false;
    if (!inter_op_set) {
        try {
            torch::set_num_interop_threads(threads);
        } catch (const c10::Error&) {
        }
        inter_op_set = true;
    }
}

void seed_generators(std::uint64_t seed, const torch::Device& device) {
    // CPU, and every visible CUDA device.
    torch::manual_seed(seed);
#if defined(SMARTCASH_HAVE_TORCH_MPS)
    // Some 2.x releases leave the MPS generator out of the global seeding: seed it by name.
    if (device.is_mps()) torch::mps::manual_seed(seed);
#endif
    (void)device;
}

DeviceMemory device_memory(const torch::Device& device) {
    DeviceMemory m;
#if defined(SMARTCASH_HAVE_MPS_HOOKS)
    if (device.is_mps()) {
        const auto& hooks = at::detail::getMPSHooks();
        m.allocated = hooks.getCurrentAllocatedMemory();
        m.reserved = hooks.getDriverAllocatedMemory();
    }
#endif
#if defined(SMARTCASH_HAVE_CUDA_ALLOCATOR)
    if (device.is_cuda()) {
        namespace alloc = c10::cuda::CUDACachingAllocator;
        const auto stats = alloc::getDeviceStats(cuda_index(device));
        // Index 0 is the aggregate over the small and the large pool.
        auto bytes = [](std::int64_t v) {
            return static_cast<std::uint64_t>(std::max<std::int64_t>(v, 0));
        };
        m.allocated = bytes(stats.allocated_bytes[0].current);
        m.reserved = bytes(stats.reserved_bytes[0].current);
        m.peak_allocated = bytes(stats.allocated_bytes[0].peak);
        m.peak_reserved = bytes(stats.reserved_bytes[0].peak);
    }
#endif
    (void)device;
    return m;
}

std::string limit_device_memory(const torch::Device& device, std::uint64_t limit) {
    if (limit == 0) return {};
    if (device.is_cpu())
        return fmt::format("device_memory_limit {} does not apply on the CPU (memory_limit does)",
                           format_size(limit));
#if defined(SMARTCASH_HAVE_CUDA_ALLOCATOR)
    if (device.is_cuda()) {
        // A first allocation initialises CUDA and its allocator for the device (the fraction
        // below needs both); LibTorch has no version-independent call for that alone.
        (void)torch::empty({1}, torch::TensorOptions().device(device));
        const c10::DeviceIndex index = cuda_index(device);
        std::size_t free_bytes = 0, total_bytes = 0;
        {
            c10::cuda::CUDAGuard guard(index);
            C10_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
        }
        const double fraction =
            std::min(1.0, static_cast<double>(limit) / static_cast<double>(total_bytes));
        c10::cuda::CUDACachingAllocator::setMemoryFraction(fraction, index);
        return fmt::format("CUDA memory limited to {} ({:.4f} of the device's {})",
                           format_size(limit), fraction, format_size(total_bytes));
    }
#endif
#if defined(SMARTCASH_HAVE_MPS_HOOKS)
    if (device.is_mps()) {
#if SMARTCASH_TORCH_AT_LEAST(2, 5)
        const auto& hooks = at::detail::getMPSHooks();
        const auto recommended = static_cast<std::uint64_t>(hooks.getRecommendedMaxMemory());
        // The ratio of the recommended working set, in (0, 2] (common/macos_memory.cpp).
        const auto high_watermark = macos::mps_high_watermark_ratio(limit, recommended);
        if (!high_watermark)
            return fmt::format(
                "device_memory_limit {} is not applied: Metal reports no recommended working set "
                "for this GPU, and the MPS limit is a ratio of it",
                format_size(limit));
        const double ratio = *high_watermark;
        hooks.setMemoryFraction(ratio);
        return fmt::format(
            "MPS memory limited to {} (high watermark {:.4f} of the recommended working set {})",
            format_size(static_cast<std::uint64_t>(ratio * static_cast<double>(recommended))),
            ratio, format_size(recommended));
#else
        return fmt::format(
            "device_memory_limit {} is not applied: limiting MPS memory from C++ needs LibTorch "
            "2.5 or later (this is {}); the tier's PYTORCH_MPS_HIGH_WATERMARK_RATIO still applies",
            format_size(limit), torch_version_text());
#endif
    }
#endif
    return fmt::format("device_memory_limit {} is not applied: this worker cannot limit {} memory",
                       format_size(limit), device_name(device));
}

void release_memory(const torch::Device& device, Cleanup level) {
#if defined(SMARTCASH_HAVE_MPS_HOOKS)
    if (device.is_mps()) {
        const auto& hooks = at::detail::getMPSHooks();
        if (level != Cleanup::normal) hooks.deviceSynchronize();
        hooks.emptyCache();
    }
#endif
#if defined(SMARTCASH_HAVE_CUDA_ALLOCATOR)
    if (device.is_cuda()) {
        if (level != Cleanup::normal) torch::cuda::synchronize();
        c10::cuda::CUDACachingAllocator::emptyCache();
    }
#endif
    (void)device;
    (void)level;
    release_host_block_cache();
    // Freed heap back to the system, so that the memory the supervisor reads falls too.
#if defined(__GLIBC__)
    malloc_trim(0);
#elif defined(__APPLE__)
    // libmalloc's malloc/malloc.h: a NULL zone examines every zone, a goal of 0 asks for as
    // much relief as it can give (macOS 10.7 on).
    malloc_zone_pressure_relief(nullptr, 0);
#endif
}

}  // namespace smartcash::train
