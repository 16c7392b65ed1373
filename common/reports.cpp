#include "common/reports.hpp"

#include "common/wire_fields.hpp"

namespace smartcash::protocol {

Json to_json(const WorkerReport& report) {
    return wire::variant_to_json(report, report_key, version);
}

std::optional<WorkerReport> report_from_json(const Json& message, std::string* error) {
    return wire::variant_from_json<WorkerReport>(message, report_key, "report type", error);
}

const char* type_of(const WorkerReport& report) { return wire::name_of_alternative(report); }

}  // namespace smartcash::protocol
