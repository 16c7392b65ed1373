// The worker's exit contract: the one place where exit codes are defined.
//
// The supervisor classifies every worker end from these codes (or the terminating signal); see
// docs/exit-codes.md for the table and the supervisor's action for each.
#pragma once

namespace smartcash::exit_code {

inline constexpr int done = 0;             ///< training finished (all epochs or early stop)
inline constexpr int internal_error = 70;  ///< a bug or an unexpected exception (EX_SOFTWARE)
inline constexpr int config_error = 78;    ///< the config is invalid or incompatible (EX_CONFIG)
inline constexpr int data_error = 65;      ///< the dataset is invalid (EX_DATAERR)
inline constexpr int io_error =
    74;                         ///< a file could not be written/read, e.g. full disk (EX_IOERR)
inline constexpr int oom = 75;  ///< an allocation failed in-process; emergency checkpoint written
inline constexpr int requested_stop = 76;  ///< stopped after a checkpoint because it was asked to
/// a collective failed because another rank is gone (several ranks); checkpoint written
inline constexpr int peer_lost = 77;
inline constexpr int usage = 64;  ///< bad command line (EX_USAGE)
/// training diverged: too many optimizer steps in a row had a non-finite loss or gradient norm
inline constexpr int diverged = 79;

/// A short lower-case name for a worker exit code ("done", "oom", ...), or "unknown".
constexpr const char* name(int code) {
    switch (code) {
        case done:
            return "done";
        case internal_error:
            return "internal_error";
        case config_error:
            return "config_error";
        case data_error:
            return "data_error";
        case io_error:
            return "io_error";
        case oom:
            return "oom";
        case requested_stop:
            return "requested_stop";
        case peer_lost:
            return "peer_lost";
        case usage:
            return "usage";
        case diverged:
            return "diverged";
        default:
            return "unknown";
    }
}

}  // namespace smartcash::exit_code
