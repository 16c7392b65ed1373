// Reading a run's journal (events.jsonl) in tests: shared by the supervisor's shell tests and the
// integration tests.
#pragma once

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace smartcash::test_support {

/// Every well-formed JSON line of a journal file, in order (a torn last line is skipped).
inline std::vector<nlohmann::json> read_journal(const std::string& path) {
    std::vector<nlohmann::json> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (!j.is_discarded()) out.push_back(std::move(j));
    }
    return out;
}

/// The journal entries whose "event" is `name`.
inline std::vector<nlohmann::json> only_events(const std::vector<nlohmann::json>& all,
                                               const std::string& name) {
    std::vector<nlohmann::json> out;
    for (const auto& e : all)
        if (e.value("event", "") == name) out.push_back(e);
    return out;
}

}  // namespace smartcash::test_support
