// The status a client is shown (protocol::StatusView, the answer to `status`): from the running
// supervisor's state, or from the state.json of a run whose supervisor is gone.
#pragma once

#include "common/control.hpp"
#include "daemon/rules/decision.hpp"
#include "daemon/rules/progress_rate.hpp"
#include "daemon/rundir/state_file.hpp"

namespace smartcash::daemon {

/// The live status; `persistence` and `supervisor_pid` are the shell's to fill in. `progress`
/// adds the figures of the worker's latest report (phase, step in epoch, images/s, ETA).
protocol::StatusView status_view(const SupervisorState& state, const Config& config,
                                 const std::string& run_dir,
                                 const LiveProgress& progress = LiveProgress());

/// The status recorded in state.json: no worker, phase idle, supervisor_running false.
protocol::StatusView status_view(const StateRecord& record, const std::string& run_dir);

}  // namespace smartcash::daemon
