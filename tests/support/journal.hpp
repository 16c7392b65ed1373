// Reading a run's journal (events.jsonl) in tests: shared by the supervisor's shell tests and the
// integration tests.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace smartcash::test_support {

/// Every JSON line of a journal file, in order. Only the last line may be torn (a write cut off by
/// a kill) and is then skipped; a malformed line anywhere else fails the calling test.
inline std::vector<nlohmann::json> read_journal(const std::string& path) {
    std::vector<nlohmann::json> out;
    std::ifstream in(path);
    std::string line;
    std::size_t number = 0;
    std::string torn;  // the malformed line seen last, failing unless nothing follows it
    std::size_t torn_number = 0;
    while (std::getline(in, line)) {
        ++number;
        if (!torn.empty()) {
            ADD_FAILURE() << path << ":" << torn_number << ": malformed journal line: " << torn;
            torn.clear();
        }
        auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded()) {
            torn = line.empty() ? std::string("(empty line)") : line;
            torn_number = number;
        } else {
            out.push_back(std::move(j));
        }
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
