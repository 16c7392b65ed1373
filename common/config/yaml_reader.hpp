// A located YAML reader: every value it reads or rejects is tied to the file, line, column and
// key path it came from, so a user's mistake is reported where it was written.
//
// It knows nothing of the job's schema: callers name the valid keys of a map and how a value is
// to be read (integer, number in a range, size, duration, one of some names). Every failure is a
// ConfigError. Nothing in here depends on LibTorch.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace smartcash::config {

/// A 1-based position in the file; {0, 0} when unknown.
struct Where {
    int line = 0;
    int column = 0;
};

/// Where a node or error mark is in the file.
Where where_of(const YAML::Mark& mark);

/// A closed, open or half-open interval for range checks, rendered in messages as
/// "must be in (0, 1]" or "must be >= 0".
struct Range {
    double lo = -std::numeric_limits<double>::infinity();
    double hi = std::numeric_limits<double>::infinity();
    bool lo_open = false;
    bool hi_open = false;

    bool contains(double v) const;
    /// "must be >= 1", "must be > 0", "must be in [0, 1)".
    std::string describe() const;
};

Range any_value();
Range at_least(double lo);
Range above(double lo);
Range closed(double lo, double hi);
Range closed_open(double lo, double hi);
Range open_closed(double lo, double hi);

/// One value of the file with where it was written (its key, or the list element) and its full
/// key path ("tiers[1].micro_batch").
struct Entry {
    std::string key;
    std::string path;
    Where at;
    YAML::Node value;
};

/// The keys present in one mapping of the file, each already checked against the valid ones.
struct Section {
    std::string path;
    Where at;
    std::vector<Entry> entries;

    /// The entry for `key`, or nullptr when the file leaves it out.
    const Entry* get(const std::string& key) const;
};

/// Joins with ", " (for lists of valid keys and names in messages).
std::string join(const std::vector<std::string>& items);

/// How a node looks, for "expected X, got Y" messages: 'text', a list, a map, nothing.
std::string describe(const YAML::Node& node);

/// `parent.key`, or `key` at the top level.
std::string child_path(const std::string& parent, const std::string& key);

/// Reads one YAML document of one file. Remembers where each key path was written, so that
/// checks over several keys can still point at the file.
class YamlReader {
  public:
    explicit YamlReader(std::string file) : m_file(std::move(file)) {}

    /// Parses the text; a syntax error is a ConfigError at the offending token.
    YAML::Node parse(const std::string& text) const;

    [[noreturn]] void fail(Where at, const std::string& path, const std::string& message) const;
    /// Fails at the position of `path` (or of its nearest written parent).
    [[noreturn]] void fail_at(const std::string& path, const std::string& message) const;

    /// Where a key path was written, or its nearest written parent (for checks that involve
    /// several keys, some of which may be defaults); {0, 0} when none was written.
    Where locate(const std::string& path) const;
    /// Whether the file wrote this key path itself.
    bool written(const std::string& path) const { return m_where.count(path) > 0; }
    void remember(const std::string& path, Where at) { m_where[path] = at; }

    /// The keys of a map, each of them one of `valid` and none twice; an unknown key fails with
    /// the valid ones listed (and a "did you mean" for a near miss). A null node ("model:" with
    /// nothing under it) is an empty section.
    Section section(const YAML::Node& node, const std::string& path, Where at,
                    const std::vector<std::string>& valid);
    Section section(const Entry& e, const std::vector<std::string>& valid);

    /// What a free key name (an environment variable's) must be: the test, and the message
    /// when it fails ("is not an environment variable name ...").
    struct NameRule {
        std::function<bool(const std::string&)> ok;
        std::string what;
    };
    /// A map of free names to scalars (`expected_map` and `expected_value` say what was wanted in
    /// messages); each name must pass `names` and come once. A null node is an empty map.
    Section string_map(const Entry& e, const NameRule& names, const std::string& expected_map,
                       const std::string& expected_value);

    /// The elements of a list, each an Entry with path `path[i]` and its own position.
    std::vector<Entry> elements(const Entry& e) const;

    std::string scalar(const Entry& e, const std::string& expected) const;
    /// An integer within `range` and the range of int.
    int integer(const Entry& e, const Range& range) const;
    /// A non-negative integer of 64 bits (seeds).
    std::uint64_t unsigned_integer(const Entry& e) const;
    /// A finite number within `range`.
    double number(const Entry& e, const Range& range) const;
    /// true/false, yes/no, on/off (any case).
    bool boolean(const Entry& e) const;
    /// A byte size such as 12GiB (see common/units.hpp).
    std::uint64_t size(const Entry& e) const;
    /// A duration such as 250ms or 1h30m, in seconds, within `range`.
    double duration(const Entry& e, const Range& range) const;
    /// One of `names`; returns its index.
    std::size_t choice(const Entry& e, const std::vector<std::string>& names) const;

  private:
    std::string m_file;
    std::map<std::string, Where> m_where;  ///< key path -> where the key was written
};

}  // namespace smartcash::config
