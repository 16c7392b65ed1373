// dump_config, resume_fingerprint and resume_incompatibilities: the config written back out by
// the field tables of common/config/schema.cpp.
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <type_traits>

#include "common/config.hpp"
#include "common/config/schema.hpp"
#include "common/sha256.hpp"
#include "common/units.hpp"

namespace smartcash {
namespace {

using config::Field;
using config::Kind;
using config::Tree;

/// A value as the file writes it, in a form that reads back to the same value: the shortest
/// text of a double that parses back to it, sizes and durations in exact units.
template <typename Root>
std::string scalar_text(const Field<Root>& field, Root& root) {
    config::Slot slot = field.slot(root);
    switch (field.kind) {
        case Kind::number:
            return fmt::format("{}", *std::get<double*>(slot));
        case Kind::duration:
            return format_duration_exact(*std::get<double*>(slot));
        case Kind::size:
            return format_size_exact(*std::get<std::uint64_t*>(slot));
        case Kind::boolean:
            return *std::get<bool*>(slot) ? "true" : "false";
        default:
            break;
    }
    return std::visit(
        [](auto* member) -> std::string {
            using Member = std::remove_pointer_t<decltype(member)>;
            if constexpr (std::is_enum_v<Member>) {
                return config::name_of(*member);
            } else if constexpr (std::is_integral_v<Member>) {
                return std::to_string(*member);
            } else if constexpr (std::is_same_v<Member, std::string>) {
                return *member;
            } else {
                throw std::logic_error("a config value of this kind is not one scalar");
            }
        },
        slot);
}

class Writer {
  public:
    std::string write(Config c) {
        m_out << YAML::Comment("Resolved configuration: every key, defaults filled in.");
        write_section(config::config_tree(), c);
        return std::string(m_out.c_str()) + "\n";
    }

  private:
    template <typename Root>
    void write_section(const Tree<Root>& tree, Root& root) {
        m_out << YAML::BeginMap;
        for (const Tree<Root>& child : tree.children) {
            m_out << YAML::Key << child.key << YAML::Value;
            if (child.field) {
                write_value(*child.field, root);
            } else {
                if (config::written_on_one_line(child.path)) m_out << YAML::Flow;
                write_section(child, root);
            }
        }
        m_out << YAML::EndMap;
    }

    template <typename Root>
    void write_value(const Field<Root>& field, Root& root) {
        config::Slot slot = field.slot(root);
        switch (field.kind) {
            case Kind::name:
            case Kind::dataset:
            case Kind::path:
                m_out << YAML::DoubleQuoted << *std::get<std::string*>(slot);
                return;
            case Kind::per_scale:
                m_out << YAML::Flow << YAML::BeginSeq;
                for (double v : *std::get<std::vector<double>*>(slot))
                    m_out << fmt::format("{}", v);
                m_out << YAML::EndSeq;
                return;
            case Kind::env:
                m_out << YAML::Flow << YAML::BeginMap;
                for (const auto& [name, value] :
                     *std::get<std::map<std::string, std::string>*>(slot))
                    m_out << YAML::Key << name << YAML::Value << YAML::DoubleQuoted << value;
                m_out << YAML::EndMap;
                return;
            case Kind::tiers:
                m_out << YAML::BeginSeq;
                for (TierConfig& tier : *std::get<std::vector<TierConfig>*>(slot))
                    write_section(config::tier_tree(), tier);
                m_out << YAML::EndSeq;
                return;
            default:
                m_out << scalar_text(field, root);
        }
    }

    YAML::Emitter m_out;
};

}  // namespace

std::string dump_config(const Config& config) { return Writer().write(config); }

// The canonical text is "smartcash-resume-v1\n" then "key=value\n" per resume-critical row, in
// the rows' order. Checkpoints carry this digest: it must not change for a given config.
std::string resume_fingerprint(const Config& config) {
    Config c = config;  // a slot points into a root it may write
    std::string canonical = "smartcash-resume-v1\n";
    for (const Field<Config>& field : config::config_fields()) {
        if (field.resume) canonical += std::string(field.key) + "=" + scalar_text(field, c) + "\n";
    }
    return sha256_hex(canonical);
}

std::vector<std::string> resume_incompatibilities(const Config& saved, const Config& current) {
    return config::compare_fields(saved, current, /*resume_only=*/true).differ;
}

}  // namespace smartcash
