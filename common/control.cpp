#include "common/control.hpp"

#include "common/wire_fields.hpp"

namespace smartcash::protocol {

Json to_json(const ControlRequestLine& request) { return wire::to_object(request); }

ControlRequestLine control_request_from_json(const Json& request) {
    return wire::from_object<ControlRequestLine>(request);
}

Json to_json(const ControlAnswer& answer) { return wire::to_object(answer); }

ControlAnswer control_answer_from_json(const Json& answer) {
    return wire::from_object<ControlAnswer>(answer);
}

Json control_error(const std::string& why) { return to_json(ControlAnswer{false, why, {}, {}}); }

Json control_accepted(const std::string& state, const std::string& phase) {
    return to_json(ControlAnswer{true, std::nullopt, state, phase});
}

Json to_json(const StatusView& status) {
    Json j = to_json(ControlAnswer{true, {}, {}, {}});
    wire::write_fields(status, j);
    // A client sees every figure, known or not.
    for (const char* key : {"loss", "map50", "map50_95"})
        if (!j.contains(key)) j[key] = nullptr;
    return j;
}

StatusView status_from_json(const Json& answer) { return wire::from_object<StatusView>(answer); }

Json watch_status_line(const StatusView& status) {
    Json j = to_json(status);
    j[watch_kind_key] = watch_kind::status;
    return j;
}

Json watch_event_line(const Json& journal_entry) {
    Json j = to_json(ControlAnswer{true, {}, {}, {}});
    j[watch_kind_key] = watch_kind::event;
    j[watch_event_key] = journal_entry;
    return j;
}

Json to_json(const HistoryAnswer& answer) { return wire::to_object(answer); }

HistoryAnswer history_from_json(const Json& answer) {
    return wire::from_object<HistoryAnswer>(answer);
}

Json to_json(const MetricsAnswer& answer) { return wire::to_object(answer); }

MetricsAnswer metrics_from_json(const Json& answer) {
    return wire::from_object<MetricsAnswer>(answer);
}

}  // namespace smartcash::protocol
