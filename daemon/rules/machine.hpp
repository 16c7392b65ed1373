// The inside of decide(): one decision in progress (a copy of the state, the actions so far) and
// the helpers that keep each rule in one place. Its handlers are spread over this folder by idea.
// Internal to daemon/rules; the rest of the supervisor sees decision.hpp only.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "daemon/rules/decision.hpp"

namespace smartcash::daemon::rules {

namespace ev = protocol;  // the journal's event structs

class Machine {
  public:
    Machine(const SupervisorState& state, const Event& event, const DecideContext& context)
        : m_s(state),
          m_now(event.now),
          m_config(*context.config),
          m_devices(context.devices),
          m_world_size(context.world_size),
          m_rank(context.rank) {}

    Decision finish() { return Decision{std::move(m_s), std::move(m_actions), m_ok, m_error}; }

    void on(const StartJob&);          // decision.cpp
    void on(const WorkerStarted& e);   // decision.cpp
    void on(const SpawnFailed& e);     // decision.cpp
    void on(const WorkerExited& e);    // decision.cpp
    void on(const TimerExpired& e);    // decision.cpp
    void on(const Shutdown& e);        // decision.cpp
    void on(const Report& e);          // reports.cpp
    void on(const MemorySample& e);    // memory.cpp
    void on(const ControlRequest& e);  // control.cpp
    void on(const WorldFormed& e);     // world.cpp
    void on(const PeerEnded& e);       // world.cpp
    void on(const WorldAgentLost& e);  // world.cpp

  private:
    // The report handlers (reports.cpp).
    void on_report(const protocol::Hello& r);
    void on_report(const protocol::Progress& r);
    void on_report(const protocol::CheckpointWritten& r);
    void on_report(const protocol::Eval& r);
    void on_report(const protocol::EpochEnd& r);
    void on_report(const protocol::Oom& r);
    void on_report(const protocol::Stopping& r);
    void on_report(const protocol::CheckpointRejected& r);
    void on_report(const protocol::WorkerError& r);
    void on_report(const protocol::Done& r);

    const SupervisorConfig& sc() const { return m_config.supervisor; }
    int tier_count() const { return static_cast<int>(m_config.tiers.size()); }
    const TierConfig& tier(int i) const { return m_config.tiers[static_cast<std::size_t>(i)]; }
    const std::string& tier_name() const { return tier(m_s.tier).name; }
    std::string device_of(int i) const { return to_string(tier(i).device); }
    bool present(int i) const { return tier_present(tier(i), m_devices); }
    bool world() const { return m_world_size > 1; }
    DecideContext context() const {
        return DecideContext{&m_config, m_devices, m_world_size, m_rank};
    }
    bool worker_alive() const {
        return m_s.phase == WorkerPhase::running || m_s.phase == WorkerPhase::stopping ||
               m_s.phase == WorkerPhase::terminating || m_s.phase == WorkerPhase::killing;
    }

    template <typename A>
    void act(A&& action) {
        m_actions.emplace_back(std::forward<A>(action));
    }
    void journal(protocol::JournalEvent e) { act(JournalEntry{std::move(e)}); }
    void reject(std::string why) {
        m_ok = false;
        m_error = std::move(why);
    }

    // decision.cpp
    void skip_tier(int i);
    int next_present_below(int from, bool journal_skips);
    int next_present_above(int from) const;
    void launch();  // with several ranks: join_world(), the worker starts once the round forms
    void start_worker();
    void after_exit(ExitClass cls, const std::string& what);  // the decision on a worker's end
    void move_to(int target, const std::string& reason, bool relaunch);
    void fail(const std::string& message);
    void fail_exhausted(const std::string& last);
    void crash_retry(ExitClass cls, const std::string& what);
    void request_stop(StopReason reason, double wait_seconds);
    void hold_now();
    void finish_job(JobStatus status, const std::string& message);
    // memory.cpp
    void check_soft_limit(const MemorySample& e);
    void remember_recent(const MemorySample& e);
    // world.cpp
    void join_world();
    void publish_end(ExitClass cls, StopReason hold, std::size_t at);
    void stop_for_peer();
    // promotion.cpp
    void memory_move(const std::string& reason, bool relaunch);
    void promoted_stop_done();
    void maybe_promote();

    SupervisorState m_s;
    double m_now;
    const Config& m_config;
    DevicePresence m_devices;
    int m_world_size = 1;
    int m_rank = 0;
    std::vector<Action> m_actions;
    bool m_ok = true;
    std::string m_error;
};

}  // namespace smartcash::daemon::rules
