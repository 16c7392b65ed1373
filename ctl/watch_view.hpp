// `smartcashctl watch`: follows the supervisor's watch stream. On a terminal, a live progress
// block (common/progress_block.hpp) redrawn in place with events as lines above it; otherwise
// plain lines: each event, and the progress at most every 10 s. The stream outlives worker
// restarts; it ends when the supervisor exits.
#pragma once

#include <ostream>
#include <string>

namespace smartcash::ctl {

struct WatchOptions {
    bool terminal = false;  ///< draw the live block (stdout is a terminal)
    int width = 80;         ///< the terminal's columns
    bool verbose = false;   ///< show step checkpoints and epoch ends too
};

/// Watches until the supervisor exits (0), or returns `cannot_connect` when it does not answer
/// (the reason on stderr).
int watch(const std::string& socket_path, const WatchOptions& options, std::ostream& out,
          int cannot_connect);

}  // namespace smartcash::ctl
