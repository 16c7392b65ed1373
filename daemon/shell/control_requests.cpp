#include "daemon/shell/control_requests.hpp"

#include "daemon/rundir/journal_reader.hpp"

namespace smartcash::daemon {

protocol::Json answer_control(const protocol::Json& message, const ControlContext& c) {
    namespace cmd = protocol::control_cmd;
    const protocol::ControlRequestLine request = protocol::control_request_from_json(message);
    if (request.cmd == cmd::status) return protocol::to_json(c.status());
    if (request.cmd == cmd::watch) return protocol::watch_status_line(c.status());
    if (request.cmd == cmd::history) {
        const std::int64_t limit = request.limit.value_or(protocol::default_history_limit);
        if (limit < 0) return protocol::control_error("limit must be 0 or more");
        protocol::HistoryAnswer answer;
        answer.events = read_journal_tail(c.run_dir, static_cast<std::size_t>(limit));
        return protocol::to_json(answer);
    }
    if (request.cmd == cmd::metrics) {
        static const MetricsCounters none;
        return protocol::to_json(protocol::MetricsAnswer{
            true, metrics_exposition(c.status(), c.counters ? *c.counters : none)});
    }
    ControlRequest r;
    if (request.cmd == cmd::stop) {
        r.command = ControlCommand::stop;
    } else if (request.cmd == cmd::pause) {
        r.command = ControlCommand::pause;
    } else if (request.cmd == cmd::resume) {
        r.command = ControlCommand::resume;
    } else if (request.cmd == cmd::checkpoint) {
        r.command = ControlCommand::checkpoint;
    } else if (request.cmd == cmd::tier) {
        r.command = ControlCommand::tier;
        if (!request.tier) return protocol::control_error("tier needs a string field \"tier\"");
        r.tier = *request.tier;
    } else {
        return protocol::control_error("unknown command \"" + request.cmd + "\"");
    }
    const Decision d = c.dispatch(r);
    if (!d.ok) return protocol::control_error(d.error);
    return protocol::control_accepted(to_string(d.state.status), to_string(d.state.phase));
}

}  // namespace smartcash::daemon
