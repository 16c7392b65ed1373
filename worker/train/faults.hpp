// The worker's fault contract, its pieces: which exceptions are allocation failures, the address
// space kept for an emergency checkpoint, how the run ends with an exit code, and how a failure
// inside the optimizer update is told from one before it (docs/exit-codes.md).
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

namespace smartcash::train {

/// True when an exception's text is one of the out-of-memory messages of the allocators and the
/// libraries on the device (case-insensitive): CUDA's and MPS's "out of memory", cuBLAS's and
/// cuDNN's *_STATUS_ALLOC_FAILED, Metal's command buffer out of memory ("Insufficient Memory",
/// MTLCommandBufferErrorOutOfMemory), the CPU allocator's and OpenCV's.
bool is_out_of_memory(const std::string& message);

/// True when an exception is an allocation failure: std::bad_alloc, c10::OutOfMemoryError
/// (CUDA), or any exception whose text is an out-of-memory message (MPS, the CPU allocator).
bool is_out_of_memory(const std::exception& e);

/// Address space kept in reserve so that writing the emergency checkpoint still works after an
/// allocation failed under an address-space limit.
class EmergencyReserve {
  public:
    EmergencyReserve() = default;
    EmergencyReserve(const EmergencyReserve&) = delete;
    EmergencyReserve& operator=(const EmergencyReserve&) = delete;
    ~EmergencyReserve() { release(); }

    void hold(std::size_t bytes);
    void release();

  private:
    void* m_ptr = nullptr;
    std::size_t m_size = 0;
};

/// Sum of AdamW's per-parameter update counts. It moves as soon as optimizer.step() has updated
/// any parameter, so a failure that leaves this changed came from inside the update.
std::int64_t optimizer_updates(torch::optim::AdamW& optimizer);

/// Thrown out of the training loop to end the run with an exit code, after its report was sent.
struct RunEnd {
    int code;
};

/// Too many optimizer steps in a row had a non-finite loss or gradient norm.
class DivergedError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

}  // namespace smartcash::train
