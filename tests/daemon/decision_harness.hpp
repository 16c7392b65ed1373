// What the tests of the supervisor's state machine share: a three-tier config, a view of the
// actions a decision holds, and a harness that drives decide() like the shell would.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "daemon/rules/decision.hpp"

namespace smartcash::daemon::decision_harness {

constexpr std::uint64_t GiB = 1ull << 30;

inline Config make_config() {
    Config c;
    TierConfig accelerated;
    accelerated.name = "accelerated";
    accelerated.device = Device::cuda;
    accelerated.memory_limit = 8 * GiB;
    TierConfig cpu;
    cpu.name = "cpu";
    cpu.device = Device::cpu;
    cpu.memory_limit = 6 * GiB;
    TierConfig minimal;
    minimal.name = "minimal";
    minimal.device = Device::cpu;
    minimal.memory_limit = 4 * GiB;
    c.tiers = {accelerated, cpu, minimal};
    c.supervisor.backoff_floor_seconds = 1;
    c.supervisor.backoff_cap_seconds = 8;
    c.supervisor.retry_budget = 3;
    c.supervisor.heartbeat_timeout_seconds = 300;
    c.supervisor.stop_grace_seconds = 30;
    c.supervisor.promotion.stable_seconds = 100;
    c.supervisor.promotion.headroom = 0.5;
    c.supervisor.promotion.max_wait_seconds = 350;
    return c;
}

// A command as the worker reads it off the wire.
struct SentCommand {
    std::string cmd;
    std::string reason;
};
// What the tests look at in an action: the action itself, or its wire form for a command.
template <class T>
struct Seen {
    using type = T;
    static T of(const T& action) { return action; }
};
template <>
struct Seen<SendCommand> {
    using type = SentCommand;
    static SentCommand of(const SendCommand& action) {
        const Json j = protocol::to_json(action.command);
        return {j.value("cmd", ""), j.value("reason", "")};
    }
};

template <class T>
std::vector<typename Seen<T>::type> all_of(const Decision& d) {
    std::vector<typename Seen<T>::type> out;
    for (const Action& a : d.actions)
        if (auto* p = std::get_if<T>(&a)) out.push_back(Seen<T>::of(*p));
    return out;
}

template <class T>
std::optional<typename Seen<T>::type> first_of(const Decision& d) {
    auto v = all_of<T>(d);
    if (v.empty()) return std::nullopt;
    return v.front();
}

// Journal entries as the journal writes them.
inline Json journal_entry(const Decision& d, const std::string& event) {
    for (const auto& j : all_of<JournalEntry>(d)) {
        const Json entry = protocol::to_json(j.entry);
        if (entry.value("event", "") == event) return entry;
    }
    return Json();
}

inline bool journaled(const Decision& d, const std::string& event) {
    return !journal_entry(d, event).is_null();
}

// Drives decide() like the shell would, keeping state and time.
struct Harness {
    Config config = make_config();
    DevicePresence devices{/*cuda=*/true, /*mps=*/false, "", "no MPS here"};
    SupervisorState state;
    double now = 1000;
    int next_pid = 100;

    int world_size = 1;  // several ranks: docs/distributed.md
    int rank = 0;

    Decision feed(EventBody body) {
        DecideContext ctx{&config, devices, world_size, rank};
        Decision d = decide(state, Event{now, std::move(body)}, ctx);
        state = d.state;
        return d;
    }
    // Start the job and get a worker running at the current tier.
    Decision start() {
        Decision d = feed(StartJob{});
        if (state.phase == WorkerPhase::spawning) return feed(WorkerStarted{next_pid++});
        return d;
    }
    Decision started() { return feed(WorkerStarted{next_pid++}); }
    Decision exit_code(int code) {
        WorkerExited e;
        e.exit_code = code;
        return feed(e);
    }
    Decision killed(int sig) {
        WorkerExited e;
        e.signal = sig;
        return feed(e);
    }
    // A report as the worker's wire carries it.
    Decision report(Json m) {
        std::string error;
        auto report = protocol::report_from_json(m, &error);
        EXPECT_TRUE(report) << error;
        return report ? feed(Report{std::move(*report)}) : Decision{};
    }
    Decision memory(std::uint64_t rss, std::optional<std::uint64_t> available = std::nullopt,
                    std::optional<double> pressure = std::nullopt) {
        return feed(MemorySample{rss, available, pressure});
    }
};

}  // namespace smartcash::daemon::decision_harness
