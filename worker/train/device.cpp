#include "worker/train/device.hpp"

#include <torch/version.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#if defined(__APPLE__) && TORCH_VERSION_MAJOR >= 2
#include <torch/mps.h>
#define SMARTCASH_HAVE_MPS_API 1
#endif
#if __has_include(<c10/cuda/CUDACachingAllocator.h>) && defined(SMARTCASH_WITH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#define SMARTCASH_HAVE_CUDA_ALLOCATOR 1
#endif

namespace smartcash::train {

namespace {
bool mps_available() {
#if defined(SMARTCASH_HAVE_MPS_API)
    return torch::mps::is_available();
#else
    return false;
#endif
}
}  // namespace

bool device_available(Device device) {
    switch (device) {
        case Device::auto_:
        case Device::cpu: return true;
        case Device::cuda: return torch::cuda::is_available();
        case Device::mps: return mps_available();
    }
    return false;
}

torch::Device resolve_device(Device device) {
    switch (device) {
        case Device::cuda: return torch::Device(torch::kCUDA);
        case Device::mps: return torch::Device(torch::kMPS);
        case Device::cpu: return torch::Device(torch::kCPU);
        case Device::auto_:
            if (torch::cuda::is_available()) return torch::Device(torch::kCUDA);
            if (mps_available()) return torch::Device(torch::kMPS);
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

std::uint64_t device_allocated_bytes(const torch::Device& device) {
#if defined(SMARTCASH_HAVE_MPS_API) && TORCH_VERSION_MAJOR >= 2 && TORCH_VERSION_MINOR >= 1
    if (device.is_mps()) return static_cast<std::uint64_t>(torch::mps::current_allocated_memory());
#endif
#if defined(SMARTCASH_HAVE_CUDA_ALLOCATOR)
    if (device.is_cuda()) {
        auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index() < 0 ? 0 : device.index());
        return static_cast<std::uint64_t>(stats.allocated_bytes[0].current);
    }
#endif
    (void)device;
    return 0;
}

void release_memory(const torch::Device& device, Cleanup level) {
#if defined(SMARTCASH_HAVE_MPS_API)
    if (device.is_mps()) {
        if (level != Cleanup::normal) torch::mps::synchronize();
#if TORCH_VERSION_MAJOR >= 2 && TORCH_VERSION_MINOR >= 1
        torch::mps::empty_cache();
#endif
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
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

}  // namespace smartcash::train
