#include "daemon/rules/decision.hpp"

#include <algorithm>
#include <csignal>
#include <cstring>

#include "common/exit_codes.hpp"
#include "common/units.hpp"

namespace smartcash::daemon {

namespace {

// One decision in progress: a copy of the state, the actions so far, and helpers that keep
// the rules in one place each.
class Machine {
  public:
    Machine(const SupervisorState& state, const Event& event, const DecideContext& context)
        : m_s(state), m_now(event.now), m_config(*context.config), m_devices(context.devices) {}

    Decision finish() { return Decision{std::move(m_s), std::move(m_actions), m_ok, m_error}; }

    void on(const StartJob&);
    void on(const WorkerStarted& e);
    void on(const SpawnFailed& e);
    void on(const WorkerExited& e);
    void on(const Report& e);
    void on(const MemorySample& e);
    void on(const TimerExpired& e);
    void on(const ControlRequest& e);
    void on(const Shutdown& e);

  private:
    const SupervisorConfig& sc() const { return m_config.supervisor; }
    int tier_count() const { return static_cast<int>(m_config.tiers.size()); }
    const TierConfig& tier(int i) const { return m_config.tiers[static_cast<std::size_t>(i)]; }
    bool present(int i) const { return tier_present(tier(i), m_devices); }
    bool worker_alive() const {
        return m_s.phase == WorkerPhase::running || m_s.phase == WorkerPhase::stopping ||
               m_s.phase == WorkerPhase::terminating || m_s.phase == WorkerPhase::killing;
    }

    void act(Action a) { m_actions.push_back(std::move(a)); }
    void journal(Json j) { act(JournalEntry{std::move(j)}); }
    void reject(std::string why) {
        m_ok = false;
        m_error = std::move(why);
    }
    Json tier_json(int i) const {
        return Json{{"tier", tier(i).name}, {"device", to_string(tier(i).device)}};
    }

    int next_present_below(int from, bool journal_skips);
    int next_present_above(int from) const;
    void launch();
    void move_to(int target, const std::string& reason, bool relaunch);
    void memory_move(const std::string& reason, bool relaunch);
    void fail(const std::string& message);
    void fail_exhausted(const std::string& last);
    void crash_retry(ExitClass cls, const std::string& what);
    void request_stop(StopReason reason, double wait_seconds);
    void hold_now();
    void finish_job(JobStatus status, const std::string& message);
    void check_soft_limit(const MemorySample& e);
    void remember_recent(const MemorySample& e);
    void maybe_promote();

    SupervisorState m_s;
    double m_now;
    const Config& m_config;
    DevicePresence m_devices;
    std::vector<Action> m_actions;
    bool m_ok = true;
    std::string m_error;
};

int Machine::next_present_below(int from, bool journal_skips) {
    for (int i = from + 1; i < tier_count(); ++i) {
        if (present(i)) return i;
        if (journal_skips) {
            Json j = tier_json(i);
            j["event"] = "tier-skipped";
            j["reason"] = why_absent(tier(i), m_devices);
            journal(j);
            m_s.tier_records[tier(i).name].last_outcome = "skipped";
        }
    }
    return -1;
}

int Machine::next_present_above(int from) const {
    for (int i = from - 1; i >= 0; --i)
        if (present(i)) return i;
    return -1;
}

void Machine::launch() {
    m_s.status = JobStatus::running;
    m_s.phase = WorkerPhase::spawning;
    m_s.launches += 1;
    m_s.tier_records[tier(m_s.tier).name].launches += 1;
    m_s.launched_at = m_now;
    m_s.pid = 0;
    m_s.progress_since_launch = false;
    m_s.launch_resume_step = m_s.last_checkpoint_step;
    m_s.recent.clear();
    m_s.kill_reason = KillReason::none;
    m_s.hang = false;
    m_s.stop_reason = StopReason::none;
    m_s.stop_target = -1;
    m_s.hold = StopReason::none;
    m_s.pressure_since.reset();
    m_s.soft_limit_noted = false;
    m_s.limit_hit_at = -1;
    m_s.peak_rss_launch = 0;
    m_s.rss = 0;
    m_s.last_error.clear();
    m_s.message.clear();
    Json j = tier_json(m_s.tier);
    j["event"] = "launch";
    j["launch"] = m_s.launches;
    j["resume_step"] = m_s.last_checkpoint_step;
    journal(j);
    act(Launch{m_s.tier});
    act(SaveState{});
}

void Machine::move_to(int target, const std::string& reason, bool relaunch) {
    Json j{{"event", "tier-move"},
           {"from", tier(m_s.tier).name},
           {"to", tier(target).name},
           {"reason", reason}};
    journal(j);
    m_s.tier = target;
    m_s.tier_since = m_now;
    m_s.peak_rss_at_tier = 0;
    m_s.failures_without_progress = 0;
    m_s.backoff = 0;
    if (relaunch)
        launch();
    else
        act(SaveState{});
}

void Machine::memory_move(const std::string& reason, bool relaunch) {
    const double failed_at = m_s.limit_hit_at >= 0 ? m_s.limit_hit_at : m_now;
    const bool on_trial =
        m_s.promoted_from >= 0 &&
        (m_s.promoted_at < 0 || failed_at - m_s.promoted_at < sc().promotion.stable_seconds);
    if (on_trial && present(m_s.promoted_from)) {
        // The tier we were promoted to could not hold: go back and wait twice as long.
        const double base =
            m_s.promotion_wait > 0 ? m_s.promotion_wait : sc().promotion.stable_seconds;
        m_s.promotion_wait = std::min(base * 2, sc().promotion.max_wait_seconds);
        const int back = m_s.promoted_from;
        m_s.promoted_from = -1;
        journal(Json{{"event", "promotion-failed"},
                     {"tier", tier(m_s.tier).name},
                     {"back_to", tier(back).name},
                     {"reason", reason},
                     {"next_wait_s", m_s.promotion_wait}});
        move_to(back, reason, relaunch);
        return;
    }
    m_s.promoted_from = -1;
    const int next = next_present_below(m_s.tier, /*journal_skips=*/true);
    if (next < 0) {
        fail_exhausted(reason);
        return;
    }
    move_to(next, reason, relaunch);
}

void Machine::finish_job(JobStatus status, const std::string& message) {
    m_s.status = status;
    m_s.phase = WorkerPhase::idle;
    m_s.message = message;
    journal(Json{{"event", to_string(status)}, {"message", message}});
    act(SaveState{});
    act(Finish{status, message});
}

void Machine::fail(const std::string& message) { finish_job(JobStatus::failed, message); }

void Machine::fail_exhausted(const std::string& last) {
    std::string msg =
        "no tier left to try (last: " + last + " at tier " + tier(m_s.tier).name + "). Tried:";
    bool first = true;
    for (int i = 0; i < tier_count(); ++i) {
        const TierConfig& t = tier(i);
        auto it = m_s.tier_records.find(t.name);
        std::string part;
        if (!present(i)) {
            part = t.name + " skipped (no " + to_string(t.device) + " device)";
        } else if (it == m_s.tier_records.end() || it->second.launches == 0) {
            continue;
        } else {
            const TierRecord& r = it->second;
            part = t.name + " (" + to_string(t.device) + ", limit " +
                   (t.memory_limit ? format_size(t.memory_limit) : std::string("none")) +
                   ") peaked at " + format_size(r.peak_rss) + " RSS";
            if (r.peak_device_mem) part += " / " + format_size(r.peak_device_mem) + " device";
            part += ", " + (r.last_outcome.empty() ? std::string("?") : r.last_outcome);
        }
        msg += (first ? " " : "; ") + part;
        first = false;
    }
    fail(msg);
}

void Machine::crash_retry(ExitClass cls, const std::string& what) {
    if (m_s.progress_since_launch) {
        m_s.failures_without_progress = 0;
        m_s.backoff = 0;
    } else {
        m_s.failures_without_progress += 1;
    }
    if (m_s.failures_without_progress >= sc().retry_budget) {
        std::string msg = "the worker failed " + std::to_string(m_s.failures_without_progress) +
                          " times in a row at tier " + tier(m_s.tier).name +
                          " without writing a checkpoint; last: " + what + " (" + to_string(cls) +
                          ")";
        if (!m_s.last_error.empty()) msg += ": " + m_s.last_error;
        fail(msg);
        return;
    }
    const double delay =
        std::min(std::max(m_s.backoff, sc().backoff_floor_seconds), sc().backoff_cap_seconds);
    m_s.backoff = std::min(delay * 2, sc().backoff_cap_seconds);
    m_s.phase = WorkerPhase::backoff;
    journal(Json{{"event", "backoff"},
                 {"tier", tier(m_s.tier).name},
                 {"seconds", delay},
                 {"failures", m_s.failures_without_progress},
                 {"retry_budget", sc().retry_budget}});
    act(StartTimer{TimerKind::backoff, delay});
    act(SaveState{});
}

void Machine::request_stop(StopReason reason, double wait_seconds) {
    m_s.stop_reason = reason;
    m_s.phase = WorkerPhase::stopping;
    act(SendCommand{"checkpoint_and_stop", to_string(reason)});
    act(StartTimer{TimerKind::stop, wait_seconds});
}

// The worker is gone and a pause/stop/shutdown is pending: do not launch again.
void Machine::hold_now() {
    m_s.phase = WorkerPhase::idle;
    const StopReason hold = m_s.hold;
    m_s.hold = StopReason::none;
    m_s.stop_reason = StopReason::none;
    if (hold == StopReason::pause) {
        m_s.status = JobStatus::paused;
        m_s.message = "paused on request";
        journal(Json{{"event", "paused"}, {"tier", tier(m_s.tier).name}});
        act(SaveState{});
    } else if (hold == StopReason::stop) {
        finish_job(JobStatus::stopped, "stopped on request");
    } else {
        // Shutdown keeps a paused job paused so that a restart does not resume it by surprise.
        if (m_s.status == JobStatus::paused)
            finish_job(JobStatus::paused, m_s.message.empty() ? "paused" : m_s.message);
        else
            finish_job(JobStatus::stopped, "supervisor shut down; a restart continues the job");
    }
}

void Machine::on(const StartJob&) {
    if (tier_count() == 0) {
        fail("the config has no tiers");
        return;
    }
    if (m_s.status == JobStatus::done) {
        act(Finish{JobStatus::done, m_s.message.empty() ? "the job is already done" : m_s.message});
        return;
    }
    if (m_s.tier < 0 || m_s.tier >= tier_count()) m_s.tier = 0;
    journal(Json{{"event", "start"},
                 {"tier", tier(m_s.tier).name},
                 {"status", to_string(m_s.status)},
                 {"launches", m_s.launches}});
    if (m_s.status == JobStatus::failed) {
        // Starting a failed job again is an explicit new attempt with a fresh retry budget.
        m_s.failures_without_progress = 0;
        m_s.message.clear();
    }
    m_s.backoff = 0;
    m_s.tier_since = m_now;
    m_s.peak_rss_at_tier = 0;
    m_s.promoted_from = -1;
    if (!present(m_s.tier)) {
        Json skip = tier_json(m_s.tier);
        skip["event"] = "tier-skipped";
        skip["reason"] = why_absent(tier(m_s.tier), m_devices);
        journal(skip);
        int t = next_present_below(m_s.tier, /*journal_skips=*/true);
        if (t < 0) t = next_present_above(m_s.tier);
        if (t < 0) {
            fail("no tier's device is present on this machine");
            return;
        }
        move_to(t, "device not usable", /*relaunch=*/false);
    }
    if (m_s.status == JobStatus::paused) {
        m_s.phase = WorkerPhase::idle;
        act(SaveState{});
        return;
    }
    launch();
}

void Machine::on(const WorkerStarted& e) {
    if (m_s.phase != WorkerPhase::spawning) return;
    m_s.pid = e.pid;
    m_s.phase = WorkerPhase::running;
    journal(Json{{"event", "worker-started"}, {"pid", e.pid}, {"tier", tier(m_s.tier).name}});
    act(StartTimer{TimerKind::heartbeat, sc().heartbeat_timeout_seconds});
    act(SaveState{});  // records the pid, so a restarted supervisor can wait for a leftover worker
    if (m_s.hold != StopReason::none)
        request_stop(m_s.hold, m_s.hold == StopReason::shutdown ? sc().stop_grace_seconds
                                                                : sc().heartbeat_timeout_seconds);
}

void Machine::on(const SpawnFailed& e) {
    if (m_s.phase != WorkerPhase::spawning) return;
    m_s.phase = WorkerPhase::idle;
    m_s.last_error = e.message;
    journal(Json{{"event", "spawn-failed"},
                 {"tier", tier(m_s.tier).name},
                 {"message", e.message},
                 {"cannot_execute", e.cannot_execute}});
    if (e.cannot_execute) {
        // A missing or non-executable worker stays so: say it now instead of after the budget.
        m_s.tier_records[tier(m_s.tier).name].last_outcome = to_string(ExitClass::fatal);
        fail(e.message + "; not retrying (check --worker or SMARTCASH_WORKER)");
        return;
    }
    if (m_s.hold != StopReason::none) {
        hold_now();
        return;
    }
    crash_retry(ExitClass::crash, "the worker could not be started");
}

void Machine::on(const WorkerExited& e) {
    if (!worker_alive() && m_s.phase != WorkerPhase::spawning) return;
    act(CancelTimer{TimerKind::heartbeat});
    act(CancelTimer{TimerKind::stop});
    act(CancelTimer{TimerKind::grace});
    const ExitClass cls = classify(e, m_s, DecideContext{&m_config, m_devices});
    const std::string what = describe_exit(e);
    TierRecord& record = m_s.tier_records[tier(m_s.tier).name];
    record.last_outcome = to_string(cls);
    Json j = tier_json(m_s.tier);
    j["event"] = "exit";
    j["pid"] = m_s.pid;
    j["class"] = to_string(cls);
    j["how"] = what;
    if (e.exit_code) j["exit_code"] = *e.exit_code;
    if (e.signal) j["signal"] = *e.signal;
    j["peak_rss"] = m_s.peak_rss_launch;
    j["step"] = m_s.step;  // the last step the worker reported
    j["progress"] = m_s.progress_since_launch;
    j["seconds"] = m_now - m_s.launched_at;
    if (m_s.stop_reason != StopReason::none) j["stop_reason"] = to_string(m_s.stop_reason);
    if (!m_s.last_error.empty()) j["error"] = m_s.last_error;
    journal(j);
    m_s.pid = 0;
    m_s.phase = WorkerPhase::idle;
    m_s.rss = 0;

    const bool hold = m_s.hold != StopReason::none;
    switch (cls) {
        case ExitClass::done:
            finish_job(JobStatus::done, "training finished at step " + std::to_string(m_s.step));
            return;
        case ExitClass::fatal: {
            std::string msg = "the worker stopped with " + what;
            if (!m_s.last_error.empty()) msg += ": " + m_s.last_error;
            msg += "; not retrying";
            fail(msg);
            return;
        }
        case ExitClass::oom:
        case ExitClass::oom_killed:
            memory_move(to_string(cls), !hold);
            break;
        case ExitClass::requested:
        case ExitClass::crash:
        case ExitClass::hang:
            if (m_s.stop_reason == StopReason::memory) {
                memory_move("soft-limit", !hold);
            } else if (m_s.stop_reason == StopReason::promotion && cls == ExitClass::requested) {
                if (!hold) {
                    const int from = m_s.tier;
                    journal(Json{{"event", "promoted"},
                                 {"from", tier(from).name},
                                 {"to", tier(m_s.stop_target).name}});
                    move_to(m_s.stop_target, "promotion", /*relaunch=*/false);
                    m_s.promoted_from = from;
                    m_s.promoted_at = -1;  // the trial starts at the worker's hello
                    launch();
                }
            } else if (m_s.stop_reason == StopReason::tier && m_s.stop_target >= 0) {
                m_s.promoted_from = -1;
                move_to(m_s.stop_target, "requested", !hold);
            } else if (!hold) {
                if (cls == ExitClass::requested) {
                    // A pause or stop that was withdrawn (resume) before the worker got out.
                    launch();
                } else {
                    crash_retry(cls, what);
                }
            }
            break;
    }
    if (m_s.status == JobStatus::failed) return;
    if (hold) hold_now();
}

void Machine::on(const Report& e) {
    const Json& m = e.message;
    const std::string type = m.value("type", "");
    if (m_s.phase == WorkerPhase::running || m_s.phase == WorkerPhase::stopping)
        act(StartTimer{TimerKind::heartbeat, sc().heartbeat_timeout_seconds});
    auto num = [&](const char* key, double fallback) {
        auto it = m.find(key);
        return it != m.end() && it->is_number() ? it->get<double>() : fallback;
    };
    auto str = [&](const char* key) {
        auto it = m.find(key);
        return it != m.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    auto i64 = [&](const char* key, std::int64_t fallback) {
        return static_cast<std::int64_t>(num(key, static_cast<double>(fallback)));
    };
    auto u64 = [&](const char* key) {
        const double v = num(key, 0);
        return v > 0 ? static_cast<std::uint64_t>(v) : std::uint64_t{0};
    };
    TierRecord& record = m_s.tier_records[tier(m_s.tier).name];
    if (type == "hello") {
        if (m_s.promoted_from >= 0 && m_s.promoted_at < 0) m_s.promoted_at = m_now;
        m_s.device = str("device");
        m_s.step = static_cast<std::int64_t>(num("resumed_step", 0));
        m_s.launch_resume_step = m_s.step;
        m_s.total_steps = static_cast<std::int64_t>(num("total_steps", 0));
        m_s.epoch = static_cast<int>(num("epoch", 0));
        journal(Json{{"event", "hello"},
                     {"tier", tier(m_s.tier).name},
                     {"device", m_s.device},
                     {"resumed_step", m_s.step},
                     {"total_steps", m_s.total_steps}});
    } else if (type == "progress") {
        m_s.step = static_cast<std::int64_t>(num("step", static_cast<double>(m_s.step)));
        m_s.total_steps =
            static_cast<std::int64_t>(num("total_steps", static_cast<double>(m_s.total_steps)));
        m_s.epoch = static_cast<int>(num("epoch", m_s.epoch));
        if (m.contains("loss") && m["loss"].is_number()) m_s.loss = m["loss"].get<double>();
        m_s.device_mem = u64("device_mem");
        record.peak_device_mem = std::max(record.peak_device_mem, m_s.device_mem);
    } else if (type == "checkpoint") {
        m_s.last_checkpoint = str("path");
        m_s.last_checkpoint_step = static_cast<std::int64_t>(num("step", -1));
        // A stop checkpoint at the step the launch resumed from is no progress: a worker that
        // hangs but answers SIGTERM must not reset the retry budget forever.
        if (m_s.last_checkpoint_step > m_s.launch_resume_step) m_s.progress_since_launch = true;
        journal(Json{{"event", "checkpoint"},
                     {"tier", tier(m_s.tier).name},
                     {"path", m_s.last_checkpoint},
                     {"step", m_s.last_checkpoint_step},
                     {"kind", str("kind")}});
        act(SaveState{});
    } else if (type == "eval") {
        if (m.contains("map50") && m["map50"].is_number()) m_s.map50 = m["map50"].get<double>();
        if (m.contains("map50_95") && m["map50_95"].is_number())
            m_s.map50_95 = m["map50_95"].get<double>();
        Json layers = Json::object();
        if (m.contains("layers") && m["layers"].is_object()) {
            m_s.layer_map50.clear();
            for (const auto& [name, v] : m["layers"].items()) {
                if (!v.is_object() || !v.contains("map50") || !v["map50"].is_number()) continue;
                m_s.layer_map50[name] = v["map50"].get<double>();
                layers[name] = v["map50"];
            }
        }
        journal(Json{{"event", "eval"},
                     {"tier", tier(m_s.tier).name},
                     {"epoch", i64("epoch", m_s.epoch)},
                     {"step", i64("step", m_s.step)},
                     {"map50", m_s.map50 ? Json(*m_s.map50) : Json()},
                     {"map50_95", m.value("map50_95", Json())},
                     {"layers_map50", layers},
                     {"best_map50", m.value("best_map50", Json())}});
        act(SaveState{});
    } else if (type == "epoch_end") {
        m_s.epoch = static_cast<int>(num("epoch", m_s.epoch));
        m_s.step = i64("step", m_s.step);
        record.peak_device_mem = std::max(record.peak_device_mem, u64("peak_device_mem"));
        journal(Json{{"event", "epoch_end"},
                     {"tier", tier(m_s.tier).name},
                     {"epoch", m_s.epoch},
                     {"step", i64("step", m_s.step)},
                     {"peak_rss", m_s.peak_rss_at_tier},
                     {"peak_device_mem", record.peak_device_mem}});
        maybe_promote();
    } else if (type == "oom") {
        m_s.last_error = str("message");
        journal(Json{{"event", "worker-oom"},
                     {"tier", tier(m_s.tier).name},
                     {"message", m_s.last_error},
                     {"step", i64("step", -1)},
                     {"checkpoint", str("checkpoint")}});
    } else if (type == "error") {
        m_s.last_error = str("kind") + " error: " + str("message");
        journal(
            Json{{"event", "worker-error"}, {"kind", str("kind")}, {"message", str("message")}});
    } else if (type == "stopping") {
        journal(Json{{"event", "worker-stopping"},
                     {"reason", str("reason")},
                     {"step", i64("step", -1)},
                     {"checkpoint", str("checkpoint")}});
    } else if (type == "done") {
        m_s.step = static_cast<std::int64_t>(num("step", static_cast<double>(m_s.step)));
        if (m.contains("best_map50") && m["best_map50"].is_number())
            m_s.map50 = m["best_map50"].get<double>();
        journal(Json{{"event", "worker-done"},
                     {"step", m_s.step},
                     {"reason", str("reason")},
                     {"best_map50", m_s.map50 ? Json(*m_s.map50) : Json()}});
    }
}

void Machine::maybe_promote() {
    const PromotionConfig& p = sc().promotion;
    if (m_s.promoted_from >= 0 && m_s.promoted_at >= 0 &&
        m_now - m_s.promoted_at >= p.stable_seconds) {
        // The promoted tier held for a full stable stretch: the promotion stands.
        journal(Json{{"event", "promotion-kept"}, {"tier", tier(m_s.tier).name}});
        m_s.promoted_from = -1;
        m_s.promotion_wait = 0;
    }
    if (!p.enabled || m_s.phase != WorkerPhase::running || m_s.stop_reason != StopReason::none ||
        m_s.hold != StopReason::none)
        return;
    const int up = next_present_above(m_s.tier);
    if (up < 0) return;
    // The last epoch's end: the worker is about to finish, a move would only delay it.
    if (m_s.total_steps > 0 && m_s.step >= m_s.total_steps) return;
    const double wait = m_s.promotion_wait > 0 ? m_s.promotion_wait : p.stable_seconds;
    if (m_now - m_s.tier_since < wait) return;
    const std::uint64_t limit = tier(up).memory_limit;
    if (limit > 0 &&
        static_cast<double>(m_s.peak_rss_at_tier) >= p.headroom * static_cast<double>(limit))
        return;
    journal(Json{{"event", "promotion"},
                 {"from", tier(m_s.tier).name},
                 {"to", tier(up).name},
                 {"stable_s", m_now - m_s.tier_since},
                 {"peak_rss", m_s.peak_rss_at_tier}});
    m_s.stop_target = up;
    request_stop(StopReason::promotion, sc().heartbeat_timeout_seconds);
}

void Machine::check_soft_limit(const MemorySample& e) {
    const TierConfig& t = tier(m_s.tier);
    std::string why;
    if (near_tier_limit(e.rss, t, sc())) {
        why = "worker RSS " + format_size(e.rss) + " reached " +
              std::to_string(static_cast<int>(sc().soft_limit_fraction * 100 + 0.5)) +
              "% of the limit " + format_size(t.memory_limit);
    } else if (e.available && *e.available < sc().min_available) {
        why = "system memory available " + format_size(*e.available) + " below " +
              format_size(sc().min_available);
    } else if (m_s.pressure_since && m_now - *m_s.pressure_since >= sc().pressure_seconds) {
        why = "memory pressure above " + std::to_string(static_cast<int>(sc().pressure_threshold)) +
              "% for " + format_duration(m_now - *m_s.pressure_since);
    }
    if (why.empty()) return;
    const bool on_trial = m_s.promoted_from >= 0;
    if (!on_trial && next_present_below(m_s.tier, /*journal_skips=*/false) < 0) {
        // Nowhere lower to go: leave it to the hard limit rather than stopping for nothing.
        if (!m_s.soft_limit_noted) {
            journal(Json{{"event", "soft-limit-last-tier"}, {"tier", t.name}, {"reason", why}});
            m_s.soft_limit_noted = true;
        }
        return;
    }
    journal(Json{{"event", "soft-limit"}, {"tier", t.name}, {"reason", why}, {"rss", e.rss}});
    m_s.limit_hit_at = m_now;
    request_stop(StopReason::memory, sc().heartbeat_timeout_seconds);
}

// Keeps the readings of the last seconds (at least the last three): a kill is blamed on memory
// only when memory was short then, not because it touched the limit an hour earlier.
void Machine::remember_recent(const MemorySample& e) {
    constexpr std::size_t keep_at_least = 3;
    constexpr std::size_t keep_at_most = 64;
    const double window = std::max(2.0, 3 * sc().poll_interval_seconds);
    m_s.recent.push_back(RecentSample{m_now, e.rss, e.available, e.pressure});
    std::size_t drop = 0;
    while (m_s.recent.size() - drop > keep_at_least &&
           (m_s.recent[drop].at < m_now - window || m_s.recent.size() - drop > keep_at_most))
        ++drop;
    m_s.recent.erase(m_s.recent.begin(), m_s.recent.begin() + static_cast<long>(drop));
}

void Machine::on(const MemorySample& e) {
    if (!worker_alive()) return;
    m_s.rss = e.rss;
    m_s.available = e.available;
    m_s.peak_rss_launch = std::max(m_s.peak_rss_launch, e.rss);
    remember_recent(e);
    m_s.peak_rss_at_tier = std::max(m_s.peak_rss_at_tier, e.rss);
    TierRecord& record = m_s.tier_records[tier(m_s.tier).name];
    record.peak_rss = std::max(record.peak_rss, e.rss);
    if (m_s.phase == WorkerPhase::killing) return;
    const TierConfig& t = tier(m_s.tier);
    if (t.memory_limit > 0 && e.rss >= t.memory_limit) {
        journal(Json{{"event", "watchdog-kill"},
                     {"tier", t.name},
                     {"rss", e.rss},
                     {"limit", t.memory_limit}});
        m_s.kill_reason = KillReason::memory;
        if (m_s.limit_hit_at < 0) m_s.limit_hit_at = m_now;
        m_s.phase = WorkerPhase::killing;
        act(CancelTimer{TimerKind::stop});
        act(CancelTimer{TimerKind::grace});
        act(SignalWorker{SIGKILL});
        return;
    }
    if (e.pressure && *e.pressure >= sc().pressure_threshold) {
        if (!m_s.pressure_since) m_s.pressure_since = m_now;
    } else {
        m_s.pressure_since.reset();
    }
    if (m_s.phase == WorkerPhase::running) check_soft_limit(e);
}

void Machine::on(const TimerExpired& e) {
    switch (e.kind) {
        case TimerKind::heartbeat:
            if (m_s.phase != WorkerPhase::running && m_s.phase != WorkerPhase::stopping) return;
            m_s.hang = true;
            journal(Json{{"event", "hang"},
                         {"tier", tier(m_s.tier).name},
                         {"pid", m_s.pid},
                         {"timeout_s", sc().heartbeat_timeout_seconds}});
            m_s.phase = WorkerPhase::terminating;
            m_s.kill_reason = KillReason::hang;
            act(CancelTimer{TimerKind::stop});
            act(SignalWorker{SIGTERM});
            act(StartTimer{TimerKind::grace, sc().stop_grace_seconds});
            return;
        case TimerKind::stop:
            if (m_s.phase != WorkerPhase::stopping) return;
            journal(Json{{"event", "stop-timeout"},
                         {"pid", m_s.pid},
                         {"reason", to_string(m_s.stop_reason)}});
            m_s.phase = WorkerPhase::terminating;
            m_s.kill_reason = KillReason::stop;
            act(SignalWorker{SIGTERM});
            act(StartTimer{TimerKind::grace, sc().stop_grace_seconds});
            return;
        case TimerKind::grace:
            if (m_s.phase != WorkerPhase::terminating) return;
            journal(Json{{"event", "kill"}, {"pid", m_s.pid}, {"reason", "grace period over"}});
            m_s.phase = WorkerPhase::killing;
            act(SignalWorker{SIGKILL});
            return;
        case TimerKind::backoff:
            if (m_s.phase != WorkerPhase::backoff) return;
            launch();
            return;
    }
}

void Machine::on(const ControlRequest& e) {
    if (m_s.status == JobStatus::done || m_s.status == JobStatus::failed ||
        m_s.status == JobStatus::stopped) {
        if (m_s.phase == WorkerPhase::idle) {
            reject(std::string("the job is ") + to_string(m_s.status));
            return;
        }
    }
    const WorkerPhase phase = m_s.phase;
    switch (e.command) {
        case ControlCommand::stop:
        case ControlCommand::pause: {
            const StopReason reason =
                e.command == ControlCommand::stop ? StopReason::stop : StopReason::pause;
            if (reason == StopReason::pause && m_s.status == JobStatus::paused) return;
            journal(Json{{"event", "control"}, {"cmd", to_string(reason)}});
            if (phase == WorkerPhase::backoff || phase == WorkerPhase::idle) {
                act(CancelTimer{TimerKind::backoff});
                m_s.hold = reason;
                hold_now();
                return;
            }
            // stop wins over pause; neither undoes a shutdown
            if (m_s.hold != StopReason::shutdown &&
                !(m_s.hold == StopReason::stop && reason == StopReason::pause))
                m_s.hold = reason;
            if (phase == WorkerPhase::running) request_stop(reason, sc().heartbeat_timeout_seconds);
            return;
        }
        case ControlCommand::resume:
            if (m_s.hold == StopReason::pause) {
                m_s.hold = StopReason::none;
                journal(Json{{"event", "control"}, {"cmd", "resume"}});
                return;
            }
            if (m_s.status != JobStatus::paused || phase != WorkerPhase::idle) {
                reject("the job is not paused");
                return;
            }
            journal(Json{{"event", "control"}, {"cmd", "resume"}});
            m_s.tier_since = m_now;
            launch();
            return;
        case ControlCommand::checkpoint:
            if (phase != WorkerPhase::running) {
                reject("no worker is running");
                return;
            }
            act(SendCommand{"checkpoint", "requested"});
            return;
        case ControlCommand::tier: {
            int target = -1;
            for (int i = 0; i < tier_count(); ++i)
                if (tier(i).name == e.tier) target = i;
            if (target < 0) {
                reject("no tier named \"" + e.tier + "\"");
                return;
            }
            if (!present(target)) {
                reject("tier " + e.tier + " needs a " + to_string(tier(target).device) +
                       " device, which this machine does not have");
                return;
            }
            if (target == m_s.tier && m_s.stop_reason != StopReason::tier) return;
            journal(Json{{"event", "control"}, {"cmd", "tier"}, {"tier", e.tier}});
            m_s.promoted_from = -1;
            if (phase == WorkerPhase::running) {
                m_s.stop_target = target;
                request_stop(StopReason::tier, sc().heartbeat_timeout_seconds);
            } else if (phase == WorkerPhase::backoff) {
                act(CancelTimer{TimerKind::backoff});
                move_to(target, "requested", /*relaunch=*/true);
            } else if (phase == WorkerPhase::idle) {
                move_to(target, "requested", /*relaunch=*/false);
            } else {
                reject("the worker is busy stopping; try again when it has stopped");
            }
            return;
        }
    }
}

void Machine::on(const Shutdown& e) {
    journal(Json{{"event", "shutdown"}, {"force", e.force}, {"phase", to_string(m_s.phase)}});
    if (m_s.phase == WorkerPhase::idle || m_s.phase == WorkerPhase::backoff) {
        act(CancelTimer{TimerKind::backoff});
        m_s.hold = StopReason::shutdown;
        hold_now();
        return;
    }
    m_s.hold = StopReason::shutdown;
    if (e.force) {
        if (worker_alive() && m_s.phase != WorkerPhase::killing) {
            m_s.phase = WorkerPhase::killing;
            m_s.kill_reason = KillReason::stop;
            act(SignalWorker{SIGKILL});
        }
        return;
    }
    if (m_s.phase == WorkerPhase::running)
        request_stop(StopReason::shutdown, sc().stop_grace_seconds);
}

}  // namespace

Decision decide(const SupervisorState& state, const Event& event, const DecideContext& context) {
    Machine machine(state, event, context);
    std::visit([&](const auto& body) { machine.on(body); }, event.body);
    return machine.finish();
}

}  // namespace smartcash::daemon
