#include "common/config/loader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <type_traits>

#include "common/config/schema.hpp"

namespace smartcash::config {
namespace {

bool is_env_name(const std::string& name) {
    return !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
           std::all_of(name.begin(), name.end(), [](char c) {
               return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
           });
}

/// Walks the file along the field tables: each section's keys are checked against its rows,
/// each value read by its row's kind, in the rows' order.
class Loader {
  public:
    Loader(const std::string& file, std::filesystem::path base_dir)
        : m_reader(file), m_base_dir(std::move(base_dir)) {}

    Config load(const std::string& text) {
        YAML::Node root = m_reader.parse(text);
        Config config;
        config.tiers = default_tiers();
        if (!root.IsNull()) {
            const Tree<Config>& tree = config_tree();
            if (!root.IsMap()) {
                m_reader.fail(where_of(root.Mark()), "",
                              "expected a map of sections (" + join(tree.keys()) + "), got " +
                                  describe(root));
            }
            read_section(tree, m_reader.section(root, "", {1, 1}, tree.keys()), config);
        }
        check_across_keys(config, m_reader);
        return config;
    }

  private:
    template <typename Root>
    void read_section(const Tree<Root>& tree, const Section& section, Root& root) {
        for (const Tree<Root>& child : tree.children) {
            const Entry* e = section.get(child.key);
            if (!e) continue;
            if (child.field) {
                read_field(*child.field, *e, root);
            } else {
                read_section(child, m_reader.section(*e, child.keys()), root);
            }
        }
    }

    template <typename Root>
    void read_field(const Field<Root>& field, const Entry& e, Root& root) {
        const YamlReader& r = m_reader;
        Slot slot = field.slot(root);
        switch (field.kind) {
            case Kind::integer:
                *std::get<int*>(slot) = r.integer(e, field.range);
                break;
            case Kind::unsigned_integer:
                *std::get<std::uint64_t*>(slot) = r.unsigned_integer(e);
                break;
            case Kind::number:
                *std::get<double*>(slot) = r.number(e, field.range);
                break;
            case Kind::boolean:
                *std::get<bool*>(slot) = r.boolean(e);
                break;
            case Kind::choice:
                read_choice(slot, e);
                break;
            case Kind::size:
                *std::get<std::uint64_t*>(slot) = r.size(e);
                break;
            case Kind::duration:
                *std::get<double*>(slot) = r.duration(e, field.range);
                break;
            case Kind::dataset:
                *std::get<std::string*>(slot) = read_dataset(e);
                break;
            case Kind::path:
                *std::get<std::string*>(slot) = read_path(e);
                break;
            case Kind::name:
                *std::get<std::string*>(slot) = r.scalar(e, "a name");
                break;
            case Kind::per_scale:
                *std::get<std::vector<double>*>(slot) = read_per_scale(e, field.range);
                break;
            case Kind::env:
                *std::get<std::map<std::string, std::string>*>(slot) = read_env(e);
                break;
            case Kind::tiers:
                read_tiers(e, *std::get<std::vector<TierConfig>*>(slot));
                break;
        }
        if (field.check) field.check(root, e, r);
    }

    void read_choice(const Slot& slot, const Entry& e) const {
        std::visit(
            [&](auto* member) {
                using Member = std::remove_pointer_t<decltype(member)>;
                if constexpr (std::is_enum_v<Member>) {
                    const auto& names = names_of(Member{});
                    std::vector<std::string> valid;
                    for (const auto& n : names) valid.push_back(n.name);
                    *member = names[m_reader.choice(e, valid)].value;
                }
            },
            slot);
    }

    std::string read_dataset(const Entry& e) const {
        std::string text = m_reader.scalar(e, "'synthetic' or a path");
        if (text.empty()) m_reader.fail(e.at, e.path, "expected 'synthetic' or a path, got ''");
        if (text == synthetic_dataset) return text;
        std::filesystem::path p(text);
        if (p.is_relative()) p = m_base_dir / p;
        return p.lexically_normal().string();
    }

    /// A file named relative to the config file, stored normalised; empty stays empty (none).
    std::string read_path(const Entry& e) const {
        std::string text = m_reader.scalar(e, "a path");
        if (text.empty()) return text;
        std::filesystem::path p(text);
        if (p.is_relative()) p = m_base_dir / p;
        return p.lexically_normal().string();
    }

    std::vector<double> read_per_scale(const Entry& e, const Range& range) const {
        if (!e.value.IsSequence() || e.value.size() != 3) {
            std::string got = e.value.IsSequence() ? fmt::format("a list of {}", e.value.size())
                                                   : describe(e.value);
            m_reader.fail(e.at, e.path,
                          "expected a list of exactly 3 numbers (scales P3, P4, P5), got " + got);
        }
        std::vector<double> values;
        for (const Entry& element : m_reader.elements(e))
            values.push_back(m_reader.number(element, range));
        return values;
    }

    std::map<std::string, std::string> read_env(const Entry& e) {
        Section vars = m_reader.string_map(
            e, {is_env_name, "is not an environment variable name (letters, digits, '_')"},
            "a map of environment variables (NAME: \"value\")", "a value (quote it: \"0.7\")");
        std::map<std::string, std::string> env;
        for (const Entry& var : vars.entries) env[var.key] = var.value.Scalar();
        return env;
    }

    void read_tiers(const Entry& e, std::vector<TierConfig>& tiers) {
        if (e.value.IsNull()) return;  // "tiers:" with nothing under it: the built-in ones
        if (!e.value.IsSequence())
            m_reader.fail(e.at, e.path, "expected a list of tiers, got " + describe(e.value));
        if (e.value.size() == 0) m_reader.fail(e.at, e.path, "at least one tier is needed");
        const Tree<TierConfig>& tree = tier_tree();
        const Field<TierConfig>& name_field = *tree.children.front().field;
        tiers.clear();
        std::map<std::string, int> first_line;
        for (const Entry& element : m_reader.elements(e)) {
            m_reader.remember(element.path, element.at);
            if (!element.value.IsMap()) {
                m_reader.fail(element.at, element.path,
                              "expected a map (a tier), got " + describe(element.value));
            }
            Section s = m_reader.section(element.value, element.path, element.at, tree.keys());
            TierConfig tier;
            // The name first: later messages may name the tier.
            const Entry* name = s.get(name_field.key);
            if (!name) m_reader.fail(element.at, element.path, "a tier needs a name");
            read_field(name_field, *name, tier);
            if (auto seen = first_line.find(tier.name); seen != first_line.end()) {
                m_reader.fail(name->at, name->path,
                              fmt::format("duplicate tier name '{}' (first used at line {})",
                                          tier.name, seen->second));
            }
            first_line[tier.name] = name->at.line;
            read_section(tree, s, tier);
            tiers.push_back(std::move(tier));
        }
    }

    YamlReader m_reader;
    std::filesystem::path m_base_dir;
};

}  // namespace

Config read_config(const std::string& text, const std::string& file,
                   const std::filesystem::path& base_dir) {
    return Loader(file, base_dir).load(text);
}

}  // namespace smartcash::config
