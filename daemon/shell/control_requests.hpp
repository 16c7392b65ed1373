// What each request on control.sock does on the supervisor's side: status, watch, history and
// metrics are answered from what the supervisor knows; stop, pause, resume, checkpoint and tier
// become a ControlRequest event for decide().
#pragma once

#include <functional>
#include <string>

#include "common/control.hpp"
#include "daemon/rules/decision.hpp"
#include "daemon/rules/metrics_exposition.hpp"

namespace smartcash::daemon {

/// What the answers need from the supervisor.
struct ControlContext {
    std::function<protocol::StatusView()> status;
    /// Dispatches a request that changes the job; the decision says whether it was taken.
    std::function<Decision(const ControlRequest&)> dispatch;
    const MetricsCounters* counters = nullptr;
    std::string run_dir;
};

/// The answer to one request (it has a string "cmd"). A `watch` answer is the stream's first
/// line (the server keeps the connection as a watcher when it is ok).
protocol::Json answer_control(const protocol::Json& message, const ControlContext& context);

}  // namespace smartcash::daemon
