#include "worker/train/faults.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cctype>
#include <new>

namespace smartcash::train {

bool is_out_of_memory(const std::string& message) {
    // Compared in lower case: the same failure is spelled "Out of memory", "out of memory",
    // "Insufficient Memory" or "cudnn_status_alloc_failed" by different libraries and versions.
    std::string m = message;
    std::transform(m.begin(), m.end(), m.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    static const char* const texts[] = {
        "out of memory",               // CUDA, MPS ("MPS backend out of memory")
        "outofmemory",                 // Metal: MTLCommandBufferErrorOutOfMemory, and its
                                       // kIOGPUCommandBufferCallbackErrorOutOfMemory
        "insufficient memory",         // Metal's words for it ("Insufficient Memory"); OpenCV
        "cublas_status_alloc_failed",  // cuBLAS could not allocate (its handle, its workspace)
        "cudnn_status_alloc_failed",   // cuDNN likewise
        "can't allocate memory",       // CPU allocator
        "not enough memory",           // CPU allocator (older text)
        "cannot allocate memory",      // errno 12 in a message
        "failed to allocate",          // OpenCV
        "std::bad_alloc",
    };
    for (const char* text : texts)
        if (m.find(text) != std::string::npos) return true;
    return false;
}

bool is_out_of_memory(const std::exception& e) {
    if (dynamic_cast<const std::bad_alloc*>(&e)) return true;
    // The CUDA allocator throws this type (LibTorch 1.13 on, the oldest this builds against);
    // the text is the fallback for allocators that throw a plain c10::Error (MPS in many 2.x
    // releases, the CPU allocator).
    if (dynamic_cast<const c10::OutOfMemoryError*>(&e)) return true;
    return is_out_of_memory(std::string(e.what()));
}

void EmergencyReserve::hold(std::size_t bytes) {
    release();
    void* p = ::mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED) {
        m_ptr = p;
        m_size = bytes;
    }
}

void EmergencyReserve::release() {
    if (m_ptr) ::munmap(m_ptr, m_size);
    m_ptr = nullptr;
    m_size = 0;
}

std::int64_t optimizer_updates(torch::optim::AdamW& optimizer) {
    std::int64_t total = 0;
    for (auto& entry : optimizer.state())
        total += 1 + static_cast<torch::optim::AdamWParamState&>(*entry.second).step();
    return total;
}

}  // namespace smartcash::train
