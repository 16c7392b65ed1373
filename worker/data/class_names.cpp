#include "worker/data/class_names.hpp"

#include <fmt/format.h>

#include <map>

#include "worker/data/labels.hpp"

namespace smartcash::data {
namespace {

std::string trim(const std::string& s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return {};
    return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

std::string quoted_list(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
    return "[" + out + "]";
}

}  // namespace

std::vector<int> map_class_names(const std::vector<std::string>& export_names,
                                 const std::vector<std::string>& model_names,
                                 const std::string& file, int line) {
    std::map<std::string, int> model_index;
    for (size_t i = 0; i < model_names.size(); ++i)
        model_index[model_names[i]] = static_cast<int>(i);

    std::vector<std::string> problems;
    std::vector<int> mapping(export_names.size(), -1);
    std::vector<int> seen(model_names.size(), -1);
    for (size_t i = 0; i < export_names.size(); ++i) {
        const std::string name = trim(export_names[i]);
        const auto it = model_index.find(name);
        if (it == model_index.end()) {
            problems.push_back(fmt::format("class {} '{}' is not a SmartCash class", i, name));
            continue;
        }
        if (seen[static_cast<size_t>(it->second)] >= 0) {
            problems.push_back(fmt::format("class {} '{}' repeats class {}", i, name,
                                           seen[static_cast<size_t>(it->second)]));
            continue;
        }
        seen[static_cast<size_t>(it->second)] = static_cast<int>(i);
        mapping[i] = it->second;
    }
    for (size_t m = 0; m < model_names.size(); ++m)
        if (seen[m] < 0) problems.push_back(fmt::format("'{}' is missing", model_names[m]));
    if (!problems.empty()) {
        std::string what;
        for (const auto& p : problems) what += (what.empty() ? "" : "; ") + p;
        throw DataError(file, line,
                        fmt::format("names do not match the model's classes: {}. The export has "
                                    "{}; the model's classes are {}",
                                    what, quoted_list(export_names), quoted_list(model_names)));
    }
    return mapping;
}

bool is_identity(const std::vector<int>& mapping) {
    for (size_t i = 0; i < mapping.size(); ++i)
        if (mapping[i] != static_cast<int>(i)) return false;
    return true;
}

}  // namespace smartcash::data
