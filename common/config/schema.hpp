// The job config's schema: one row per key (docs/config.md describes each), the built-in tiers,
// and the checks that involve more than one key.
#pragma once

#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/config/fields.hpp"
#include "common/config/yaml_reader.hpp"

namespace smartcash::config {

/// Every key of the file except those of one tier, in the order the file is read and written.
const std::vector<Field<Config>>& config_fields();
/// The keys of one element of `tiers`.
const std::vector<Field<TierConfig>>& tier_fields();

const Tree<Config>& config_tree();
const Tree<TierConfig>& tier_tree();

/// Whether a section is written on one line ({a: 1, b: 2}) by dump_config.
bool written_on_one_line(const std::string& section_path);

/// The tiers in force when the file lists none.
std::vector<TierConfig> default_tiers();

/// The checks that involve more than one key, after every key is read; then derives each tier's
/// accumulation. Fails through `reader` at the key a user would change.
void check_across_keys(Config& config, const YamlReader& reader);

/// The keys whose values differ between two configs and those that are equal, in the rows'
/// order ("tiers[1].threads" for tiers; "tiers" when their numbers differ). `resume_only`:
/// only the keys that must not change under a resume.
struct FieldComparison {
    std::vector<std::string> differ;
    std::vector<std::string> equal;
};
FieldComparison compare_fields(const Config& a, const Config& b, bool resume_only = false);
FieldComparison compare_fields(const TierConfig& a, const TierConfig& b, const std::string& prefix);

}  // namespace smartcash::config
