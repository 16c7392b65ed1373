// Requests to stop after a checkpoint: SIGTERM, Ctrl-C (a second Ctrl-C exits at once), or a
// checkpoint_and_stop command. The training loop polls this at micro-batch boundaries.
#pragma once

#include <string>

namespace smartcash::train {

/// Installs the SIGTERM/SIGINT handlers (they only set flags).
void install_stop_handlers();

/// True once a stop was asked for, by a signal or request_stop().
bool stop_requested();

/// Asks for a stop with the given reason and exit code (from a command).
void request_stop(const std::string& reason, int exit_code);

/// Why the stop was asked ("SIGTERM", "SIGINT", or the command's reason).
std::string stop_reason();

/// The exit code to use once the checkpoint is written.
int stop_exit_code();

}  // namespace smartcash::train
