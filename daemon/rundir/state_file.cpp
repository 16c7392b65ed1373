#include "daemon/rundir/state_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <stdexcept>

#include "common/atomic_file.hpp"
#include "common/run_dir.hpp"
#include "common/wire_fields.hpp"

namespace smartcash::daemon {

namespace {

// The record as read from JSON, or an error for JSON that is not a state object.
std::optional<std::string> record_from_json(const Json& j, StateRecord* record) {
    if (!j.is_object()) return std::string("state is not a JSON object");
    protocol::wire::read_fields(j, *record);
    if (!job_status_from_string(record->status)) return "unknown status \"" + record->status + "\"";
    return std::nullopt;
}

}  // namespace

StateRecord state_record(const SupervisorState& s, const Config& config) {
    StateRecord r;
    r.status = to_string(s.status);
    const bool tier_ok = s.tier >= 0 && s.tier < static_cast<int>(config.tiers.size());
    r.tier = tier_ok ? config.tiers[static_cast<std::size_t>(s.tier)].name : std::string();
    r.tier_index = s.tier;
    r.launches = s.launches;
    r.failures_without_progress = s.failures_without_progress;
    r.last_checkpoint = s.last_checkpoint;
    r.last_checkpoint_step = s.last_checkpoint_step;
    r.step = s.step;
    r.epoch = s.epoch;
    r.map50 = s.shown.map50;
    r.map50_95 = s.shown.map50_95;
    r.layers_map50 = s.shown.layer_map50;
    r.total_steps = s.total_steps;
    r.message = s.message;
    r.promotion_wait_s = s.promotion_wait;
    r.worker_pid = s.pid;
    r.device = !s.shown.device.empty() ? s.shown.device
               : tier_ok ? to_string(config.tiers[static_cast<std::size_t>(s.tier)].device)
                         : std::string();
    r.tiers = s.tier_records;
    return r;
}

Json state_to_json(const SupervisorState& s, const Config& config) {
    return protocol::wire::to_object(state_record(s, config));
}

std::optional<std::string> state_from_json(const Json& j, const Config& config,
                                           SupervisorState* s) {
    StateRecord r;
    if (auto error = record_from_json(j, &r)) return error;
    s->status = *job_status_from_string(r.status);
    s->tier = 0;
    for (std::size_t i = 0; i < config.tiers.size(); ++i)
        if (config.tiers[i].name == r.tier) s->tier = static_cast<int>(i);
    s->launches = r.launches;
    s->failures_without_progress = r.failures_without_progress;
    s->last_checkpoint = r.last_checkpoint;
    s->last_checkpoint_step = r.last_checkpoint_step;
    s->step = r.step;
    s->epoch = r.epoch;
    s->shown.map50 = r.map50;
    s->shown.map50_95 = r.map50_95;
    s->shown.layer_map50 = r.layers_map50;
    s->total_steps = r.total_steps;
    s->message = r.message;
    s->promotion_wait = r.promotion_wait_s;
    s->tier_records = r.tiers;
    return std::nullopt;
}

namespace {

// state.json parsed; nullopt when the file does not exist, std::runtime_error when it is unusable.
std::optional<Json> read_state_json(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return std::nullopt;
    Json j = Json::parse(read_file(path), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw std::runtime_error(path + ": not valid JSON");
    return j;
}

}  // namespace

std::optional<StateRecord> read_state_record(const std::string& run_dir) {
    const std::string path = run_dir::state(run_dir);
    auto j = read_state_json(path);
    if (!j) return std::nullopt;
    StateRecord r;
    if (auto error = record_from_json(*j, &r)) throw std::runtime_error(path + ": " + *error);
    return r;
}

bool load_state_file(const std::string& run_dir, const Config& config, SupervisorState* state) {
    const std::string path = run_dir::state(run_dir);
    auto j = read_state_json(path);
    if (!j) return false;
    SupervisorState fresh;
    if (auto error = state_from_json(*j, config, &fresh))
        throw std::runtime_error(path + ": " + *error);
    *state = fresh;
    return true;
}

void save_state_file(const std::string& run_dir, const SupervisorState& state,
                     const Config& config) {
    write_file_atomic(run_dir::state(run_dir), state_to_json(state, config).dump(2) + "\n");
}

}  // namespace smartcash::daemon
