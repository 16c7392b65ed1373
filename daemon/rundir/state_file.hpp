// RUN_DIR/state.json: the persisted part of SupervisorState (status, tier, attempts, last good
// checkpoint, per-tier peaks). A restarted supervisor reads it to continue at the recorded tier;
// smartcashctl reads it for the status of a run whose supervisor is gone. This file is its only
// reader and writer.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/control.hpp"
#include "daemon/rules/decision.hpp"

namespace smartcash::daemon {

/// state.json as written: the tier by name (and index) so that the file reads well and survives
/// a reordered tier table.
struct StateRecord : protocol::JobRecord {
    int version = 1;
    std::string status = "running";
    int tier_index = 0;
    double promotion_wait_s = 0;
    int worker_pid = 0;
    /// The device the worker last trained on, as it named it ("cpu", "cuda:0", "mps"), else the
    /// tier's: what `status` shows once the supervisor has exited.
    std::string device;
    std::map<std::string, protocol::TierSummary> tiers;

    template <typename S, typename V>
    static void fields(S& s, V&& v) {
        JobRecord::fields(s, v);
        v("version", s.version), v("status", s.status), v("tier_index", s.tier_index);
        v("promotion_wait_s", s.promotion_wait_s), v("worker_pid", s.worker_pid);
        v("device", s.device), v("tiers", s.tiers);
    }
};

/// The persisted fields of a state.
StateRecord state_record(const SupervisorState& state, const Config& config);

/// The persisted fields as JSON.
Json state_to_json(const SupervisorState& state, const Config& config);

/// Fills the persisted fields of a fresh state from JSON written by state_to_json(). Unknown or
/// missing fields keep their defaults; a tier name that no longer exists falls back to tier 0.
/// Returns an error message for JSON that is not a state object.
std::optional<std::string> state_from_json(const Json& json, const Config& config,
                                           SupervisorState* state);

/// Reads RUN_DIR/state.json as written. Returns nullopt when the file does not exist; throws
/// std::runtime_error with the path when it exists but cannot be used.
std::optional<StateRecord> read_state_record(const std::string& run_dir);

/// Reads RUN_DIR/state.json into *state. Returns false (state untouched) when the file does not
/// exist; throws std::runtime_error with the path when it exists but cannot be used.
bool load_state_file(const std::string& run_dir, const Config& config, SupervisorState* state);

/// Replaces RUN_DIR/state.json atomically. Throws IoError.
void save_state_file(const std::string& run_dir, const SupervisorState& state,
                     const Config& config);

}  // namespace smartcash::daemon
