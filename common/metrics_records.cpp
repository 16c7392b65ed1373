#include "common/metrics_records.hpp"

#include <fstream>
#include <stdexcept>

#include "common/wire_fields.hpp"

namespace smartcash::protocol {

Json to_json(const MetricsRecord& record) {
    return wire::variant_to_json(record, report_key, version);
}

std::optional<MetricsRecord> metrics_record_from_json(const Json& line, std::string* error) {
    return wire::variant_from_json<MetricsRecord>(line, report_key, "metrics record type", error);
}

std::vector<MetricsRecord> read_metrics_file(const std::string& path, std::size_t* skipped_lines) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot open");
    std::vector<MetricsRecord> records;
    std::size_t skipped = 0;
    std::string text;
    while (std::getline(in, text)) {
        if (text.empty()) continue;
        const Json line = Json::parse(text, nullptr, /*allow_exceptions=*/false);
        std::string error;
        auto record = line.is_object() ? metrics_record_from_json(line, &error) : std::nullopt;
        if (record) {
            records.push_back(std::move(*record));
        } else {
            ++skipped;
        }
    }
    if (skipped_lines) *skipped_lines = skipped;
    return records;
}

}  // namespace smartcash::protocol
