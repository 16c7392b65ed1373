#include "ctl/watch_view.hpp"

#include <chrono>
#include <iostream>
#include <optional>

#include "common/control.hpp"
#include "common/journal_events.hpp"
#include "common/live_block.hpp"
#include "common/progress_block.hpp"
#include "ctl/control_client.hpp"
#include "daemon/shell/event_text.hpp"

namespace smartcash::ctl {

namespace {

using protocol::Json;
using Clock = std::chrono::steady_clock;

// "12:00:01  text" for a journal entry worth a line, "" for one that is not.
std::string event_line(const Json& entry, bool verbose) {
    std::string error;
    auto event = protocol::journal_event_from_json(entry, &error);
    if (!event || (!verbose && daemon::is_detail(*event))) return "";
    const auto text = daemon::describe_event(*event);
    if (text.text.empty()) return "";
    std::string t = entry.value("t", std::string());
    t = t.size() >= 19 ? t.substr(11, 8) : std::string(8, ' ');
    return t + "  " + (text.weight == daemon::EventWeight::alarm ? "==> " : "") + text.text;
}

}  // namespace

int watch(const std::string& socket_path, const WatchOptions& o, std::ostream& out,
          int cannot_connect) {
    std::string error;
    protocol::ControlRequestLine request{protocol::control_cmd::watch, std::nullopt, std::nullopt};
    auto stream = daemon::ControlStream::open(socket_path, protocol::to_json(request), &error);
    if (!stream) {
        std::cerr << "smartcashctl: " << error << std::endl;
        return cannot_connect;
    }
    LiveBlock block(out, o.terminal);
    Clock::time_point last_plain{};
    bool first = true;
    std::optional<protocol::StatusView> last;
    for (std::string line;;) {
        const auto got = stream->next(&line, std::chrono::hours(24));
        if (got == daemon::ControlStream::Got::timeout) continue;
        if (got == daemon::ControlStream::Got::closed) break;
        Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (!j.is_object()) continue;
        if (!j.value("ok", false)) {
            block.clear();
            std::cerr << "smartcashctl: " << j.value("error", std::string("refused")) << std::endl;
            return 1;
        }
        const std::string kind = j.value(protocol::watch_kind_key, std::string());
        if (kind == protocol::watch_kind::event) {
            const std::string text = event_line(j[protocol::watch_event_key], o.verbose);
            if (!text.empty()) block.line(text);
        } else if (kind == protocol::watch_kind::status) {
            const protocol::StatusView status = protocol::status_from_json(j);
            last = status;
            if (o.terminal) {
                block.show(progress_block(status, o.width));
            } else if (first || Clock::now() - last_plain >= std::chrono::seconds(10)) {
                last_plain = Clock::now();
                out << progress_line(status) << std::endl;
            }
            first = false;
        }
    }
    block.clear();
    if (last && o.terminal) out << progress_line(*last) << std::endl;  // the block's last state
    std::cerr << "smartcashctl: the supervisor closed the watch (it has exited)" << std::endl;
    return 0;
}

}  // namespace smartcash::ctl
