// The one mapping from an error to the worker's exit code and report kind (docs/exit-codes.md),
// used by `train` (which also reports it to the supervisor) and by every other command.
#pragma once

#include <exception>
#include <string>

namespace smartcash::train {

struct ErrorExit {
    int code;
    std::string kind;  ///< the error report's kind: config, data, io, training, peer, internal
    std::string message;
};

/// Classifies `error` (an exception caught by the caller).
ErrorExit error_exit(std::exception_ptr error);

}  // namespace smartcash::train
