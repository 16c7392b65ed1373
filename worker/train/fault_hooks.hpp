// Faults the tests cause for real in a worker (docs/testing.md): an address-space limit set at a
// given step (RLIMIT_AS, so a later allocation fails in the allocator), an impossible allocation
// inside the step's buffer snapshot, and a loss poisoned with NaN for a range of steps. Read
// once from the environment; all off in normal runs.
#pragma once

#include <cstdint>
#include <string>

namespace smartcash::train {

struct FaultHooks {
    std::int64_t rlimit_at_step = -1;        ///< SMARTCASH_TEST_RLIMIT_AS_AT_STEP
    std::uint64_t rlimit_headroom = 0;       ///< SMARTCASH_TEST_RLIMIT_AS_HEADROOM (a size)
    std::int64_t snapshot_oom_at_step = -1;  ///< SMARTCASH_TEST_SNAPSHOT_OOM_AT_STEP
    /// SMARTCASH_TEST_NONFINITE_LOSS=FROM[:COUNT]: steps FROM .. FROM+COUNT-1 (numbered by the
    /// steps completed before them; no COUNT: all from FROM on) get a loss whose gains are NaN.
    std::int64_t nonfinite_from = -1;
    std::int64_t nonfinite_count = 0;

    /// Reads the variables. With an address-space limit asked for, glibc's mmap threshold is
    /// fixed first: glibc raises it as large blocks are freed and then serves a step from memory
    /// it already holds, so a cap at the current size might never be hit.
    static FaultHooks from_environment();

    bool poisons_loss(std::int64_t step) const {
        return nonfinite_from >= 0 && step >= nonfinite_from &&
               (nonfinite_count <= 0 || step < nonfinite_from + nonfinite_count);
    }

    /// At the step asked for, caps the address space at what is mapped now plus the headroom
    /// (once). Returns a line for the log when it did.
    std::string limit_address_space_at(std::int64_t step);
};

}  // namespace smartcash::train
