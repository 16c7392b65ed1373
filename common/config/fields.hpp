// The vocabulary of the config's field tables (common/config/schema.cpp): what one key of the
// file is (its path, kind, range and the struct member it fills) and the section tree the rows
// make. The loader, the writer and the comparisons walk the same rows, so each key is described
// once.
#pragma once

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "common/config.hpp"
#include "common/config/yaml_reader.hpp"

namespace smartcash::config {

/// How a key is written in the file, and so how it is read, checked and written back.
enum class Kind {
    integer,           ///< int: 16, -1
    unsigned_integer,  ///< std::uint64_t: a non-negative integer of 64 bits (seeds)
    number,            ///< double: 0.5, 1e-3
    boolean,           ///< bool: true/false, yes/no, on/off
    choice,            ///< an enum: one of its names (see names_of)
    size,              ///< std::uint64_t bytes: 12GiB, 512MiB
    duration,          ///< double seconds: 250ms, 30s, 1h30m
    dataset,           ///< std::string: "synthetic", or a path relative to the config file
    path,              ///< std::string: a file relative to the config file; empty: none
    name,              ///< std::string written quoted (tier names)
    per_scale,         ///< std::vector<double>: one number per detection scale P3, P4, P5
    env,               ///< std::map<std::string, std::string>: environment variables
    tiers,             ///< std::vector<TierConfig>: the tier list, read by the tier table
};

/// The member a row fills: a pointer into the struct being read or written.
using Slot = std::variant<int*, std::uint64_t*, double*, bool*, std::string*, Backbone*, Device*,
                          BadLabelPolicy*, Cleanup*, std::vector<double>*,
                          std::map<std::string, std::string>*, std::vector<TierConfig>*>;

/// A check beyond the range, run right after the key is read: fails through the reader (at
/// `entry`, or at a key below it) when the value, seen with what was read before it in `root`,
/// is wrong.
template <typename Root>
using Check = void (*)(const Root& root, const Entry& entry, const YamlReader& reader);

/// One key of the file. `key` is its path below Root with dots for nested sections
/// ("training.phase1.lr.neck"); the sections, their order and the valid keys of each follow from
/// the rows' order.
template <typename Root>
struct Field {
    const char* key;
    Slot (*slot)(Root&);  ///< the member, e.g. SMARTCASH_MEMBER(model.img_size)
    Kind kind;
    Range range = {};     ///< for integer, number, duration and per_scale; none when left out
    bool resume = false;  ///< must not change under a resume: compared, and in the fingerprint
    Check<Root> check = nullptr;
};

/// The `slot` of a row: the member of the root struct that the key fills.
#define SMARTCASH_MEMBER(member) \
    [](auto& root) -> ::smartcash::config::Slot { return &root.member; }

/// `resume` of a row.
constexpr bool resume_critical = true;

/// A section of the file as the rows make it: a key with either one row (a value) or children.
template <typename Root>
struct Tree {
    std::string key;
    std::string path;
    const Field<Root>* field = nullptr;
    std::vector<Tree> children;

    /// The valid keys here, in the rows' order.
    std::vector<std::string> keys() const {
        std::vector<std::string> out;
        for (const Tree& child : children) out.push_back(child.key);
        return out;
    }
};

/// The section tree of a table of rows.
template <typename Root>
Tree<Root> tree_of(const std::vector<Field<Root>>& fields) {
    Tree<Root> root;
    for (const Field<Root>& field : fields) {
        Tree<Root>* node = &root;
        std::string path = field.key;
        std::size_t start = 0;
        while (true) {
            std::size_t dot = path.find('.', start);
            std::string key = path.substr(start, dot == std::string::npos ? dot : dot - start);
            Tree<Root>* next = nullptr;
            for (Tree<Root>& child : node->children) {
                if (child.key == key) next = &child;
            }
            if (!next) {
                node->children.push_back({key, child_path(node->path, key), nullptr, {}});
                next = &node->children.back();
            }
            node = next;
            if (dot == std::string::npos) break;
            start = dot + 1;
        }
        node->field = &field;
    }
    return root;
}

template <typename Enum>
struct EnumName {
    const char* name;
    Enum value;
};

/// The names of an enum's values, in the order messages list them.
const std::vector<EnumName<Backbone>>& names_of(Backbone);
const std::vector<EnumName<Device>>& names_of(Device);
const std::vector<EnumName<BadLabelPolicy>>& names_of(BadLabelPolicy);
const std::vector<EnumName<Cleanup>>& names_of(Cleanup);

/// The name of an enum's value ("?" for a value without one).
template <typename Enum>
const char* name_of(Enum value) {
    for (const auto& n : names_of(value)) {
        if (n.value == value) return n.name;
    }
    return "?";
}

}  // namespace smartcash::config
