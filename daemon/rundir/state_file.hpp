// RUN_DIR/state.json: the persisted part of SupervisorState (status, tier, attempts, last good
// checkpoint, per-tier peaks). A restarted supervisor reads it to continue at the recorded tier.
#pragma once

#include <optional>
#include <string>

#include "daemon/rules/decision.hpp"

namespace smartcash::daemon {

/// The persisted fields as JSON. The tier is stored by name (and index) so that the file reads
/// well and survives a reordered tier table.
Json state_to_json(const SupervisorState& state, const Config& config);

/// Fills the persisted fields of a fresh state from JSON written by state_to_json(). Unknown or
/// missing fields keep their defaults; a tier name that no longer exists falls back to tier 0.
/// Returns an error message for JSON that is not a state object.
std::optional<std::string> state_from_json(const Json& json, const Config& config,
                                           SupervisorState* state);

/// Reads RUN_DIR/state.json into *state. Returns false (state untouched) when the file does not
/// exist; throws std::runtime_error with the path when it exists but cannot be used.
bool load_state_file(const std::string& run_dir, const Config& config, SupervisorState* state);

/// Replaces RUN_DIR/state.json atomically. Throws IoError.
void save_state_file(const std::string& run_dir, const SupervisorState& state,
                     const Config& config);

}  // namespace smartcash::daemon
