// Reads a config file's text into a Config by the field tables of common/config/schema.cpp.
#pragma once

#include <filesystem>
#include <string>

#include "common/config.hpp"

namespace smartcash::config {

/// Parses and validates `text`; `file` names it in errors and `base_dir` resolves relative
/// dataset paths. Throws ConfigError at the first problem. source_path is left to the caller.
Config read_config(const std::string& text, const std::string& file,
                   const std::filesystem::path& base_dir);

}  // namespace smartcash::config
