#include "worker/train/faults.hpp"

#include <sys/mman.h>

#include <new>

namespace smartcash::train {

bool is_out_of_memory(const std::string& m) {
    return m.find("out of memory") != std::string::npos ||           // CUDA, MPS
           m.find("can't allocate memory") != std::string::npos ||   // CPU allocator
           m.find("not enough memory") != std::string::npos ||       // CPU allocator (older text)
           m.find("Cannot allocate memory") != std::string::npos ||  // errno 12 in a message
           m.find("Insufficient memory") != std::string::npos ||     // OpenCV
           m.find("Failed to allocate") != std::string::npos ||      // OpenCV
           m.find("std::bad_alloc") != std::string::npos;
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
