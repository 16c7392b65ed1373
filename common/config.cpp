// The public face of the config: errors, loading from a file or text, enum names. The reader,
// the field tables and the writer live in common/config/.
#include "common/config.hpp"

#include <fmt/format.h>

#include <cstring>
#include <filesystem>

#include "common/atomic_file.hpp"
#include "common/config/fields.hpp"
#include "common/config/loader.hpp"

namespace smartcash {
namespace {

std::string compose_message(const std::string& file, int line, int column,
                            const std::string& key_path, const std::string& what) {
    std::string out = file;
    if (line > 0) out += fmt::format(":{}:{}", line, column);
    out += ": ";
    if (!key_path.empty()) out += key_path + ": ";
    return out + what;
}

/// Reads `text` as the file `name`: relative dataset paths are taken from its directory.
Config read_named(const std::string& text, const std::string& name) {
    std::filesystem::path absolute = std::filesystem::absolute(name).lexically_normal();
    Config config = config::read_config(text, name, absolute.parent_path());
    config.source_path = absolute.string();
    return config;
}

}  // namespace

ConfigError::ConfigError(std::string file, int line, int column, std::string key_path,
                         std::string what)
    : std::runtime_error(compose_message(file, line, column, key_path, what)),
      m_file(std::move(file)),
      m_line(line),
      m_column(column),
      m_key_path(std::move(key_path)) {}

const TierConfig* Config::find_tier(const std::string& name) const {
    for (const TierConfig& tier : tiers) {
        if (tier.name == name) return &tier;
    }
    return nullptr;
}

Config load_config(const std::string& path) {
    std::string text;
    try {
        text = read_file(path);
    } catch (const IoError& e) {
        throw ConfigError(path, 0, 0, "",
                          std::string("cannot read: ") + std::strerror(e.error_code()));
    }
    return read_named(text, path);
}

Config parse_config(const std::string& text, const std::string& name) {
    return read_named(text, name);
}

const char* to_string(Backbone b) { return config::name_of(b); }
const char* to_string(Device d) { return config::name_of(d); }
const char* to_string(BadLabelPolicy p) { return config::name_of(p); }
const char* to_string(Cleanup c) { return config::name_of(c); }

}  // namespace smartcash
