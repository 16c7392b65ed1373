#include "worker/data/labels.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <locale>
#include <sstream>
#include <system_error>

namespace smartcash::data {

namespace {

// Exported coordinates are often rounded a hair past the edge; that is not an error.
constexpr double k_coord_slack = 1e-6;

std::string locate(const std::string& file, int line, const std::string& message) {
    if (file.empty()) return message;
    if (line > 0) return fmt::format("{}:{}: {}", file, line, message);
    return fmt::format("{}: {}", file, message);
}

// from_chars is locale-independent, unlike strtod, so a German locale cannot break parsing.
// Standard libraries without it for floating point (Apple's libc++) read through a stream in
// the classic locale instead.
bool parse_number(const std::string& token, double& value) {
    const char* first = token.data();
    const char* last = first + token.size();
    if (first != last && *first == '+') ++first;
#if defined(__cpp_lib_to_chars)
    auto [ptr, ec] = std::from_chars(first, last, value);
    return ec == std::errc() && ptr == last && std::isfinite(value);
#else
    if (first == last || *first == '+' || std::isspace(static_cast<unsigned char>(*first)))
        return false;
    std::istringstream in(std::string(first, last));
    in.imbue(std::locale::classic());
    in >> std::noskipws >> value;
    return !in.fail() && in.peek() == std::char_traits<char>::eof() && std::isfinite(value);
#endif
}

}  // namespace

DataError::DataError(const std::string& message) : std::runtime_error(message) {}

DataError::DataError(const std::string& file, int line, const std::string& message)
    : std::runtime_error(locate(file, line, message)), m_file(file), m_line(line) {}

std::string format_issue(const LabelIssue& issue) {
    return locate(issue.file, issue.line, issue.message);
}

std::vector<Label> parse_labels(const std::string& text, const std::string& file, int num_classes,
                                std::vector<LabelIssue>& issues) {
    static const char* const k_field_names[] = {"cx", "cy", "w", "h"};
    std::vector<Label> labels;
    std::istringstream lines(text);
    std::string line;
    int line_no = 0;
    while (std::getline(lines, line)) {
        ++line_no;
        std::istringstream fields(line);
        std::vector<std::string> tokens;
        for (std::string token; fields >> token;) tokens.push_back(token);
        if (tokens.empty()) continue;
        auto report = [&](std::string message) {
            issues.push_back({file, line_no, std::move(message)});
        };
        if (tokens.size() != 5) {
            report(fmt::format("expected 5 fields (cls cx cy w h), got {}", tokens.size()));
            continue;
        }
        double values[5];
        int bad_field = -1;
        for (int i = 0; i < 5 && bad_field < 0; ++i)
            if (!parse_number(tokens[i], values[i])) bad_field = i;
        if (bad_field >= 0) {
            report(fmt::format("field {} is not a number: '{}'", bad_field + 1, tokens[bad_field]));
            continue;
        }
        if (values[0] != std::floor(values[0])) {
            report(fmt::format("class '{}' is not an integer", tokens[0]));
            continue;
        }
        if (values[0] < 0 || values[0] >= num_classes) {
            report(fmt::format("class {} out of range [0, {})", tokens[0], num_classes));
            continue;
        }
        bool ok = true;
        for (int i = 1; i < 5 && ok; ++i) {
            if (values[i] < -k_coord_slack || values[i] > 1.0 + k_coord_slack) {
                report(fmt::format("{} = {} outside [0, 1]", k_field_names[i - 1], tokens[i]));
                ok = false;
            }
        }
        if (!ok) continue;
        if (values[3] <= 0 || values[4] <= 0) {
            report(fmt::format("empty box (w = {}, h = {})", tokens[3], tokens[4]));
            continue;
        }
        auto clamp01 = [](double v) { return static_cast<float>(std::min(1.0, std::max(0.0, v))); };
        labels.push_back({static_cast<int>(values[0]), clamp01(values[1]), clamp01(values[2]),
                          clamp01(values[3]), clamp01(values[4])});
    }
    return labels;
}

std::vector<Label> read_label_file(const std::string& path, int num_classes,
                                   std::vector<LabelIssue>& issues) {
    std::error_code ec;
    // A missing label file is an image with no objects; an existing unreadable one is not.
    if (!std::filesystem::exists(path, ec)) return {};
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    if (in) text << in.rdbuf();
    if (!in || in.bad()) {
        issues.push_back({path, 0, "cannot read label file"});
        return {};
    }
    return parse_labels(text.str(), path, num_classes, issues);
}

std::string label_path_for(const std::string& image_path) {
    std::string path = image_path;
    const std::string images = "/images/";
    auto pos = path.rfind(images);
    if (pos != std::string::npos) {
        path.replace(pos, images.size(), "/labels/");
    } else if (path.rfind("images/", 0) == 0) {
        path.replace(0, 7, "labels/");
    }
    auto slash = path.find_last_of('/');
    auto dot = path.find_last_of('.');
    if (dot != std::string::npos && (slash == std::string::npos || dot > slash)) path.erase(dot);
    return path + ".txt";
}

}  // namespace smartcash::data
