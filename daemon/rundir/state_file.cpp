#include "daemon/rundir/state_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <stdexcept>

#include "common/atomic_file.hpp"
#include "common/run_dir.hpp"

namespace smartcash::daemon {

Json state_to_json(const SupervisorState& s, const Config& config) {
    Json tiers = Json::object();
    for (const auto& [name, r] : s.tier_records)
        tiers[name] = Json{{"peak_rss", r.peak_rss},
                           {"peak_device_mem", r.peak_device_mem},
                           {"launches", r.launches},
                           {"last_outcome", r.last_outcome}};
    const bool tier_ok = s.tier >= 0 && s.tier < static_cast<int>(config.tiers.size());
    return Json{
        {"version", 1},
        {"status", to_string(s.status)},
        {"tier", tier_ok ? config.tiers[static_cast<std::size_t>(s.tier)].name : std::string()},
        {"tier_index", s.tier},
        {"launches", s.launches},
        {"failures_without_progress", s.failures_without_progress},
        {"last_checkpoint", s.last_checkpoint},
        {"last_checkpoint_step", s.last_checkpoint_step},
        {"step", s.step},
        {"epoch", s.epoch},
        {"map50", s.map50 ? Json(*s.map50) : Json()},
        {"map50_95", s.map50_95 ? Json(*s.map50_95) : Json()},
        {"layers_map50", s.layer_map50},
        {"total_steps", s.total_steps},
        {"message", s.message},
        {"promotion_wait_s", s.promotion_wait},
        {"worker_pid", s.pid},
        {"tiers", tiers}};
}

std::optional<std::string> state_from_json(const Json& j, const Config& config,
                                           SupervisorState* s) {
    if (!j.is_object()) return std::string("state is not a JSON object");
    try {
        if (auto status = job_status_from_string(j.value("status", std::string("running"))))
            s->status = *status;
        else
            return "unknown status \"" + j.value("status", std::string()) + "\"";
        const std::string name = j.value("tier", std::string());
        s->tier = 0;
        for (std::size_t i = 0; i < config.tiers.size(); ++i)
            if (config.tiers[i].name == name) s->tier = static_cast<int>(i);
        s->launches = j.value("launches", 0);
        s->failures_without_progress = j.value("failures_without_progress", 0);
        s->last_checkpoint = j.value("last_checkpoint", std::string());
        s->last_checkpoint_step = j.value("last_checkpoint_step", std::int64_t{-1});
        s->step = j.value("step", std::int64_t{-1});
        s->epoch = j.value("epoch", 0);
        if (j.contains("map50") && j["map50"].is_number()) s->map50 = j["map50"].get<double>();
        if (j.contains("map50_95") && j["map50_95"].is_number())
            s->map50_95 = j["map50_95"].get<double>();
        if (j.contains("layers_map50") && j["layers_map50"].is_object())
            for (const auto& [name, v] : j["layers_map50"].items())
                if (v.is_number()) s->layer_map50[name] = v.get<double>();
        s->total_steps = j.value("total_steps", std::int64_t{0});
        s->message = j.value("message", std::string());
        s->promotion_wait = j.value("promotion_wait_s", 0.0);
        if (j.contains("tiers") && j["tiers"].is_object()) {
            for (const auto& [tier_name, r] : j["tiers"].items()) {
                TierRecord rec;
                rec.peak_rss = r.value("peak_rss", std::uint64_t{0});
                rec.peak_device_mem = r.value("peak_device_mem", std::uint64_t{0});
                rec.launches = r.value("launches", 0);
                rec.last_outcome = r.value("last_outcome", std::string());
                s->tier_records[tier_name] = rec;
            }
        }
    } catch (const Json::exception& e) {
        return std::string("bad field: ") + e.what();
    }
    return std::nullopt;
}

bool load_state_file(const std::string& run_dir, const Config& config, SupervisorState* state) {
    const std::string path = run_dir::state(run_dir);
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return false;
    const std::string text = read_file(path);
    Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw std::runtime_error(path + ": not valid JSON");
    SupervisorState fresh;
    if (auto error = state_from_json(j, config, &fresh))
        throw std::runtime_error(path + ": " + *error);
    *state = fresh;
    return true;
}

void save_state_file(const std::string& run_dir, const SupervisorState& state,
                     const Config& config) {
    write_file_atomic(run_dir::state(run_dir), state_to_json(state, config).dump(2) + "\n");
}

}  // namespace smartcash::daemon
