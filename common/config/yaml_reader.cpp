#include "common/config/yaml_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "common/config.hpp"
#include "common/units.hpp"

namespace smartcash::config {
namespace {

/// Levenshtein distance, for "did you mean" hints on misspelt keys.
std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t above_cell = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
            diagonal = above_cell;
        }
    }
    return row[b.size()];
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

bool all_digits(const std::string& text, std::size_t from) {
    return from < text.size() &&
           std::all_of(text.begin() + static_cast<std::ptrdiff_t>(from), text.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

}  // namespace

Where where_of(const YAML::Mark& mark) {
    if (mark.is_null() || mark.line < 0) return {};
    return {mark.line + 1, mark.column + 1};
}

bool Range::contains(double v) const {
    if (lo_open ? !(v > lo) : !(v >= lo)) return false;
    if (hi_open ? !(v < hi) : !(v <= hi)) return false;
    return true;
}

std::string Range::describe() const {
    if (std::isinf(hi)) return fmt::format("must be {} {}", lo_open ? ">" : ">=", lo);
    return fmt::format("must be in {}{}, {}{}", lo_open ? "(" : "[", lo, hi, hi_open ? ")" : "]");
}

Range any_value() { return {}; }
Range at_least(double lo) { return {lo, std::numeric_limits<double>::infinity(), false, true}; }
Range above(double lo) { return {lo, std::numeric_limits<double>::infinity(), true, true}; }
Range closed(double lo, double hi) { return {lo, hi, false, false}; }
Range closed_open(double lo, double hi) { return {lo, hi, false, true}; }
Range open_closed(double lo, double hi) { return {lo, hi, true, false}; }

const Entry* Section::get(const std::string& key) const {
    for (const Entry& e : entries) {
        if (e.key == key) return &e;
    }
    return nullptr;
}

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) out += ", ";
        out += item;
    }
    return out;
}

std::string describe(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Scalar:
            return "'" + node.Scalar() + "'";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Map:
            return "a map";
        default:
            return "nothing";
    }
}

std::string child_path(const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
}

YAML::Node YamlReader::parse(const std::string& text) const {
    try {
        return YAML::Load(text);
    } catch (const YAML::Exception& e) {
        Where at = where_of(e.mark);
        throw ConfigError(m_file, at.line, at.column, "", "YAML syntax error: " + e.msg);
    }
}

void YamlReader::fail(Where at, const std::string& path, const std::string& message) const {
    throw ConfigError(m_file, at.line, at.column, path, message);
}

void YamlReader::fail_at(const std::string& path, const std::string& message) const {
    fail(locate(path), path, message);
}

Where YamlReader::locate(const std::string& path) const {
    std::string p = path;
    while (!p.empty()) {
        auto it = m_where.find(p);
        if (it != m_where.end()) return it->second;
        auto cut = p.find_last_of(".[");
        if (cut == std::string::npos) break;
        p.resize(cut);
    }
    return {};
}

Section YamlReader::section(const YAML::Node& node, const std::string& path, Where at,
                            const std::vector<std::string>& valid) {
    Section s{path, at, {}};
    if (node.IsNull()) return s;  // "model:" with nothing under it: all defaults
    if (!node.IsMap()) {
        fail(at, path, "expected a map with keys " + join(valid) + ", got " + describe(node));
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
        Where key_at = where_of(it->first.Mark());
        if (!it->first.IsScalar()) fail(key_at, path, "a key must be a plain name");
        std::string key = it->first.Scalar();
        std::string key_path = child_path(path, key);
        if (std::find(valid.begin(), valid.end(), key) == valid.end()) {
            std::string message = "unknown key '" + key + "'";
            for (const auto& candidate : valid) {
                if (edit_distance(lower(key), candidate) <= 2) {
                    message += " (did you mean '" + candidate + "'?)";
                    break;
                }
            }
            fail(key_at, key_path,
                 message + "; valid keys " +
                     (path.empty() ? std::string("at the top level") : "in " + path) +
                     " are: " + join(valid));
        }
        if (const Entry* first = s.get(key)) {
            fail(key_at, key_path,
                 fmt::format("duplicate key (first given at line {})", first->at.line));
        }
        s.entries.push_back({key, key_path, key_at, it->second});
        remember(key_path, key_at);
    }
    return s;
}

Section YamlReader::section(const Entry& e, const std::vector<std::string>& valid) {
    return section(e.value, e.path, e.at, valid);
}

Section YamlReader::string_map(const Entry& e, const NameRule& names,
                               const std::string& expected_map, const std::string& expected_value) {
    Section s{e.path, e.at, {}};
    if (e.value.IsNull()) return s;
    if (!e.value.IsMap())
        fail(e.at, e.path, "expected " + expected_map + ", got " + describe(e.value));
    for (auto it = e.value.begin(); it != e.value.end(); ++it) {
        Where key_at = where_of(it->first.Mark());
        std::string name = it->first.IsScalar() ? it->first.Scalar() : std::string();
        std::string path = e.path + "." + name;
        if (!names.ok(name)) fail(key_at, path, "'" + name + "' " + names.what);
        if (s.get(name)) fail(key_at, path, "duplicate key");
        Entry item{name, path, key_at, it->second};
        scalar(item, expected_value);
        s.entries.push_back(std::move(item));
        remember(path, key_at);
    }
    return s;
}

std::vector<Entry> YamlReader::elements(const Entry& e) const {
    std::vector<Entry> out;
    for (std::size_t i = 0; i < e.value.size(); ++i) {
        YAML::Node item = e.value[i];
        out.push_back({"", fmt::format("{}[{}]", e.path, i), where_of(item.Mark()), item});
    }
    return out;
}

std::string YamlReader::scalar(const Entry& e, const std::string& expected) const {
    if (!e.value.IsScalar())
        fail(e.at, e.path, "expected " + expected + ", got " + describe(e.value));
    return e.value.Scalar();
}

int YamlReader::integer(const Entry& e, const Range& range) const {
    std::string text = scalar(e, "an integer");
    std::size_t sign = (text.size() > 1 && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
    if (!all_digits(text, sign)) fail(e.at, e.path, "expected an integer, got '" + text + "'");
    errno = 0;
    long long v = std::strtoll(text.c_str(), nullptr, 10);
    if (errno == ERANGE || v < INT_MIN || v > INT_MAX || !range.contains(static_cast<double>(v)))
        fail(e.at, e.path, fmt::format("{} is out of range: {}", text, range.describe()));
    return static_cast<int>(v);
}

std::uint64_t YamlReader::unsigned_integer(const Entry& e) const {
    std::string text = scalar(e, "a non-negative integer");
    errno = 0;
    bool digits = all_digits(text, 0);
    unsigned long long v = digits ? std::strtoull(text.c_str(), nullptr, 10) : 0;
    if (!digits || errno == ERANGE)
        fail(e.at, e.path, "expected a non-negative integer, got '" + text + "'");
    return v;
}

double YamlReader::number(const Entry& e, const Range& range) const {
    std::string text = scalar(e, "a number");
    char* end = nullptr;
    errno = 0;
    double v = text.empty() ? 0.0 : std::strtod(text.c_str(), &end);
    bool ok = !text.empty() && end == text.c_str() + text.size() && errno != ERANGE &&
              std::isfinite(v) && !std::isspace(static_cast<unsigned char>(text[0]));
    if (!ok) fail(e.at, e.path, "expected a number, got '" + text + "'");
    if (!range.contains(v))
        fail(e.at, e.path, fmt::format("{} is out of range: {}", text, range.describe()));
    return v;
}

bool YamlReader::boolean(const Entry& e) const {
    std::string text = lower(scalar(e, "true or false"));
    if (text == "true" || text == "yes" || text == "on") return true;
    if (text == "false" || text == "no" || text == "off") return false;
    fail(e.at, e.path, "expected true or false, got '" + e.value.Scalar() + "'");
}

std::uint64_t YamlReader::size(const Entry& e) const {
    std::string text = scalar(e, "a byte size");
    try {
        return parse_size(text);
    } catch (const std::invalid_argument& error) {
        fail(e.at, e.path, error.what());
    }
}

double YamlReader::duration(const Entry& e, const Range& range) const {
    std::string text = scalar(e, "a duration");
    double seconds = 0;
    try {
        seconds = parse_duration_seconds(text);
    } catch (const std::invalid_argument& error) {
        fail(e.at, e.path, error.what());
    }
    if (!range.contains(seconds))
        fail(e.at, e.path, fmt::format("{} is out of range: {} seconds", text, range.describe()));
    return seconds;
}

std::size_t YamlReader::choice(const Entry& e, const std::vector<std::string>& names) const {
    std::string text = scalar(e, "one of " + join(names));
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (text == names[i]) return i;
    }
    fail(e.at, e.path, "expected one of " + join(names) + ", got '" + text + "'");
}

}  // namespace smartcash::config
