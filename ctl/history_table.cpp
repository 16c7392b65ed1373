#include "ctl/history_table.hpp"

#include <algorithm>
#include <array>
#include <sstream>

#include "common/units.hpp"

namespace smartcash::ctl {

namespace {

using protocol::Json;

std::string text_of(const Json& e, const char* key) {
    auto it = e.find(key);
    if (it == e.end() || it->is_null()) return "";
    if (it->is_string()) return it->get<std::string>();
    return it->dump();
}

// The tier an entry concerns: its own, or where a move or promotion went.
std::string tier_of(const Json& e) {
    std::string tier = text_of(e, "tier");
    if (tier.empty() && e.contains("to")) tier = text_of(e, "from") + " -> " + text_of(e, "to");
    return tier;
}

// The highest memory figure an entry gives.
std::string memory_of(const Json& e) {
    for (const char* key : {"peak_rss", "rss"}) {
        auto it = e.find(key);
        if (it != e.end() && it->is_number_unsigned() && it->get<std::uint64_t>() > 0)
            return format_size(it->get<std::uint64_t>());
    }
    return "";
}

std::string step_of(const Json& e) {
    for (const char* key : {"step", "resume_step", "resumed_step"}) {
        auto it = e.find(key);
        if (it != e.end() && it->is_number_integer() && it->get<std::int64_t>() >= 0)
            return std::to_string(it->get<std::int64_t>());
    }
    return "";
}

}  // namespace

std::string history_table(const std::vector<Json>& events) {
    using Row = std::array<std::string, 6>;
    std::vector<Row> rows{{"TIME", "EVENT", "TIER", "CLASS", "MEMORY PEAK", "STEP"}};
    for (const auto& e : events) {
        std::string t = text_of(e, "t");  // 2024-05-01T12:00:00.123Z -> 2024-05-01 12:00:00
        if (t.size() >= 19) t = t.substr(0, 10) + " " + t.substr(11, 8);
        rows.push_back(
            {t, text_of(e, "event"), tier_of(e), text_of(e, "class"), memory_of(e), step_of(e)});
    }
    std::array<std::size_t, 6> widths{};
    for (const auto& r : rows)
        for (std::size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], r[i].size());
    std::ostringstream out;
    for (const auto& r : rows) {
        std::string line;
        for (std::size_t i = 0; i < r.size(); ++i) {
            std::string cell = r[i].empty() ? "-" : r[i];
            if (i + 1 < r.size()) cell.resize(std::max(widths[i], std::size_t{1}) + 2, ' ');
            line += cell;
        }
        out << line << "\n";
    }
    return out.str();
}

}  // namespace smartcash::ctl
