// Faults the tests cause for real in a worker (docs/testing.md): an address-space limit set at a
// given step (RLIMIT_AS, so a later allocation fails in the allocator), an impossible allocation
// inside the step's buffer snapshot, a loss poisoned with NaN for a range of steps, and a worker
// that freezes itself at a step boundary (so a test can kill one rank at a known point). Read
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
    /// SMARTCASH_TEST_FREEZE_AT_STEP: at the step boundary after this many completed steps
    /// (before the ranks' agreement on it), the worker logs "test hook: frozen at step N" and
    /// stops itself (SIGSTOP) until it is continued or killed.
    std::int64_t freeze_at_step = -1;

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

    /// At the step asked for, logs through `log` and stops this process (once).
    template <typename Log>
    void freeze_at(std::int64_t step, Log&& log) {
        if (freeze_at_step < 0 || step != freeze_at_step) return;
        freeze_at_step = -1;
        log("test hook: frozen at step " + std::to_string(step));
        freeze();
    }

  private:
    static void freeze();
};

}  // namespace smartcash::train
