// The supervisor's state machine driven by events alone: no processes, no clocks.
#include "daemon/rules/decision.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <functional>

#include "common/exit_codes.hpp"
#include "daemon/rundir/state_file.hpp"
#include "decision_harness.hpp"

namespace smartcash::daemon {
namespace {

using namespace decision_harness;

// ---- one row per row of docs/exit-codes.md's classification table ----

enum class Expect { finish_done, next_tier, same_tier_backoff, finish_failed, as_asked_next_tier };

struct Row {
    const char* name;
    std::function<void(Harness&)> setup;  // put the worker in the situation before it ends
    std::function<WorkerExited()> end;
    ExitClass expected_class;
    Expect expected_action;
};

// Keeps test names and failure output readable (the default prints the bytes).
void PrintTo(const Row& row, std::ostream* os) { *os << row.name; }

WorkerExited code(int c) {
    WorkerExited e;
    e.exit_code = c;
    return e;
}
WorkerExited sig(int s) {
    WorkerExited e;
    e.signal = s;
    return e;
}
void nothing(Harness&) {}

class DaemonDecisionTable : public ::testing::TestWithParam<Row> {};

TEST_P(DaemonDecisionTable, ClassifiesAndActs) {
    const Row& row = GetParam();
    Harness h;
    h.start();
    ASSERT_EQ(h.state.tier, 0);
    ASSERT_EQ(h.state.phase, WorkerPhase::running);
    row.setup(h);
    const SupervisorState before = h.state;
    EXPECT_EQ(classify(row.end(), before, DecideContext{&h.config, h.devices}), row.expected_class)
        << row.name;
    Decision d = h.feed(row.end());
    Json exit = journal_entry(d, "exit");
    ASSERT_TRUE(exit.is_object()) << row.name;
    EXPECT_EQ(exit.value("class", ""), to_string(row.expected_class)) << row.name;
    switch (row.expected_action) {
        case Expect::finish_done: {
            auto f = first_of<Finish>(d);
            ASSERT_TRUE(f) << row.name;
            EXPECT_EQ(f->status, JobStatus::done);
            EXPECT_EQ(h.state.status, JobStatus::done);
            break;
        }
        case Expect::next_tier:
        case Expect::as_asked_next_tier: {
            auto l = first_of<Launch>(d);
            ASSERT_TRUE(l) << row.name;
            EXPECT_EQ(l->tier, 1) << row.name;
            EXPECT_TRUE(journaled(d, "tier-move")) << row.name;
            EXPECT_FALSE(first_of<Finish>(d)) << row.name;
            break;
        }
        case Expect::same_tier_backoff: {
            EXPECT_FALSE(first_of<Launch>(d)) << row.name;
            auto t = first_of<StartTimer>(d);
            ASSERT_TRUE(t) << row.name;
            EXPECT_EQ(t->kind, TimerKind::backoff);
            EXPECT_EQ(h.state.phase, WorkerPhase::backoff);
            Decision again = h.feed(TimerExpired{TimerKind::backoff});
            auto l = first_of<Launch>(again);
            ASSERT_TRUE(l) << row.name;
            EXPECT_EQ(l->tier, 0) << row.name;
            break;
        }
        case Expect::finish_failed: {
            auto f = first_of<Finish>(d);
            ASSERT_TRUE(f) << row.name;
            EXPECT_EQ(f->status, JobStatus::failed);
            EXPECT_FALSE(first_of<Launch>(d)) << row.name;
            EXPECT_FALSE(first_of<StartTimer>(d)) << row.name;
            EXPECT_NE(h.state.message.find("not retrying"), std::string::npos) << h.state.message;
            break;
        }
    }
}

const Row kRows[] = {
    {"finished", nothing, [] { return code(exit_code::done); }, ExitClass::done,
     Expect::finish_done},
    {"in-process oom", nothing, [] { return code(exit_code::oom); }, ExitClass::oom,
     Expect::next_tier},
    {"sigkill near the tier limit",
     [](Harness& h) { h.memory(static_cast<std::uint64_t>(7.5 * GiB)); },
     [] { return sig(SIGKILL); }, ExitClass::oom_killed, Expect::next_tier},
    {"watchdog's own kill",
     [](Harness& h) {
         Decision d = h.memory(9 * GiB);
         auto s = first_of<SignalWorker>(d);
         ASSERT_TRUE(s);
         EXPECT_EQ(s->signal, SIGKILL);
     },
     [] { return sig(SIGKILL); }, ExitClass::oom_killed, Expect::next_tier},
    {"cgroup oom kill", nothing,
     [] {
         WorkerExited e = sig(SIGKILL);
         e.cgroup_oom_kill = true;
         return e;
     },
     ExitClass::oom_killed, Expect::next_tier},
    {"sigkill while the system is short of memory",
     [](Harness& h) { h.memory(1 * GiB, /*available=*/100ull << 20); }, [] { return sig(SIGKILL); },
     ExitClass::oom_killed, Expect::next_tier},
    {"sigkill under memory pressure",
     [](Harness& h) { h.memory(1 * GiB, std::nullopt, /*pressure=*/95.0); },
     [] { return sig(SIGKILL); }, ExitClass::oom_killed, Expect::next_tier},
    // Jetsam (macOS) kills with SIGKILL when the system's memory is critical; its pressure
    // level is 4 (critical, 100% on the pressure scale) while it does. A spike shorter than one
    // poll is seen by no reading during the launch, only by the one taken right after the end.
    {"sigkill after critical pressure earlier in the launch",
     [](Harness& h) {
         h.memory(1 * GiB, std::nullopt, /*pressure=*/100.0);
         for (int i = 0; i < 20; ++i) {  // long past the readings kept for a kill
             h.now += 1;
             h.memory(1 * GiB, std::nullopt, /*pressure=*/0.0);
         }
     },
     [] { return sig(SIGKILL); }, ExitClass::oom_killed, Expect::next_tier},
    {"sigkill after a critical spike shorter than one poll",
     [](Harness& h) { h.memory(1 * GiB, std::nullopt, /*pressure=*/0.0); },
     [] {
         WorkerExited e = sig(SIGKILL);
         e.pressure_after = 100.0;  // read right after SIGCHLD
         return e;
     },
     ExitClass::oom_killed, Expect::next_tier},
    {"sigkill with only warning pressure after the end",
     [](Harness& h) { h.memory(1 * GiB, std::nullopt, /*pressure=*/0.0); },
     [] {
         WorkerExited e = sig(SIGKILL);
         e.pressure_after = 50.0;  // macOS's warning level: not the killer's
         return e;
     },
     ExitClass::crash, Expect::same_tier_backoff},
    {"sigkill with memory exactly at the soft fraction",
     [](Harness& h) {
         h.config.supervisor.soft_limit_fraction = 0.5;
         // 4 GiB is exactly 50% of the accelerated tier's 8 GiB: at the soft fraction counts
         // (the soft limit also asks for a stop; the kill comes first).
         h.memory(4 * GiB);
     },
     [] { return sig(SIGKILL); }, ExitClass::oom_killed, Expect::next_tier},
    {"sigkill after a peak near the limit that then fell",
     [](Harness& h) {
         h.config.tiers.resize(1);  // the last tier: the soft limit only notes the peak
         h.memory(static_cast<std::uint64_t>(7.95 * GiB));
         for (int i = 0; i < 20; ++i) {
             h.now += 1;
             h.memory(1 * GiB);
         }
     },
     [] { return sig(SIGKILL); }, ExitClass::crash, Expect::same_tier_backoff},
    {"sigkill by the supervisor after a hang, memory near the limit",
     [](Harness& h) {
         h.config.supervisor.soft_limit_fraction = 0.99;
         h.feed(TimerExpired{TimerKind::heartbeat});
         h.memory(static_cast<std::uint64_t>(7.95 * GiB));  // terminating: no soft-limit move
         h.feed(TimerExpired{TimerKind::grace});
     },
     [] { return sig(SIGKILL); }, ExitClass::hang, Expect::same_tier_backoff},
    {"sigbus", nothing, [] { return sig(SIGBUS); }, ExitClass::crash, Expect::same_tier_backoff},
    {"any other signal", nothing, [] { return sig(SIGUSR2); }, ExitClass::crash,
     Expect::same_tier_backoff},
    {"hang, then a fatal code", [](Harness& h) { h.feed(TimerExpired{TimerKind::heartbeat}); },
     [] { return code(exit_code::config_error); }, ExitClass::fatal, Expect::finish_failed},
    {"hang, then done", [](Harness& h) { h.feed(TimerExpired{TimerKind::heartbeat}); },
     [] { return code(exit_code::done); }, ExitClass::done, Expect::finish_done},
    {"requested stop after soft limit",
     [](Harness& h) {
         Decision d = h.memory(static_cast<std::uint64_t>(7 * GiB));  // 87.5% of 8 GiB
         auto c = first_of<SendCommand>(d);
         ASSERT_TRUE(c);
         EXPECT_EQ(c->cmd, "checkpoint_and_stop");
         EXPECT_EQ(c->reason, "memory");
     },
     [] { return code(exit_code::requested_stop); }, ExitClass::requested,
     Expect::as_asked_next_tier},
    {"config error", nothing, [] { return code(exit_code::config_error); }, ExitClass::fatal,
     Expect::finish_failed},
    {"dataset error", nothing, [] { return code(exit_code::data_error); }, ExitClass::fatal,
     Expect::finish_failed},
    {"usage error", nothing, [] { return code(exit_code::usage); }, ExitClass::fatal,
     Expect::finish_failed},
    {"diverged", nothing, [] { return code(exit_code::diverged); }, ExitClass::fatal,
     Expect::finish_failed},
    {"other exit code", nothing, [] { return code(3); }, ExitClass::crash,
     Expect::same_tier_backoff},
    {"io error", nothing, [] { return code(exit_code::io_error); }, ExitClass::crash,
     Expect::same_tier_backoff},
    {"internal error", nothing, [] { return code(exit_code::internal_error); }, ExitClass::crash,
     Expect::same_tier_backoff},
    {"sigsegv", nothing, [] { return sig(SIGSEGV); }, ExitClass::crash, Expect::same_tier_backoff},
    {"sigabrt", nothing, [] { return sig(SIGABRT); }, ExitClass::crash, Expect::same_tier_backoff},
    {"unexplained sigkill", [](Harness& h) { h.memory(1 * GiB); }, [] { return sig(SIGKILL); },
     ExitClass::crash, Expect::same_tier_backoff},
    {"requested-stop code nobody asked for", nothing,
     [] { return code(exit_code::requested_stop); }, ExitClass::crash, Expect::same_tier_backoff},
    {"hang: heartbeat ran out, then SIGTERM",
     [](Harness& h) { h.feed(TimerExpired{TimerKind::heartbeat}); }, [] { return sig(SIGTERM); },
     ExitClass::hang, Expect::same_tier_backoff},
    {"hang: checkpointed after SIGTERM",
     [](Harness& h) { h.feed(TimerExpired{TimerKind::heartbeat}); },
     [] { return code(exit_code::requested_stop); }, ExitClass::hang, Expect::same_tier_backoff},
};

INSTANTIATE_TEST_SUITE_P(Rows, DaemonDecisionTable, ::testing::ValuesIn(kRows),
                         [](const ::testing::TestParamInfo<Row>& info) {
                             std::string n = info.param.name;
                             for (char& c : n)
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             return n;
                         });

// ---- tier moves ----

TEST(DaemonDecision, StartLaunchesFirstTierAndArmsHeartbeat) {
    Harness h;
    Decision d = h.feed(StartJob{});
    auto l = first_of<Launch>(d);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->tier, 0);
    EXPECT_EQ(h.state.launches, 1);
    Decision s = h.started();
    auto t = first_of<StartTimer>(s);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->kind, TimerKind::heartbeat);
    EXPECT_DOUBLE_EQ(t->seconds, 300);
}

TEST(DaemonDecision, SkipsTierWhoseDeviceIsAbsentAtStart) {
    Harness h;
    h.devices.cuda = false;
    Decision d = h.feed(StartJob{});
    EXPECT_TRUE(journaled(d, "tier-skipped"));
    auto l = first_of<Launch>(d);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->tier, 1);
}

TEST(DaemonDecision, SkipsAbsentTierWhenMovingDown) {
    Harness h;
    h.config.tiers[1].device = Device::mps;  // cuda -> (mps absent) -> minimal
    h.start();
    Decision d = h.exit_code(exit_code::oom);
    Json skip = journal_entry(d, "tier-skipped");
    ASSERT_TRUE(skip.is_object());
    EXPECT_EQ(skip.value("tier", ""), "cpu");
    auto l = first_of<Launch>(d);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->tier, 2);
}

TEST(DaemonDecision, PastLastTierFailsWithWhatWasTriedAndPeaks) {
    Harness h;
    h.start();
    h.memory(3 * GiB);
    h.exit_code(exit_code::oom);
    h.started();
    h.memory(5 * GiB + GiB / 2);
    h.killed(SIGKILL);  // near cpu's 6 GiB limit -> oom-killed
    ASSERT_EQ(h.state.tier, 2);
    h.started();
    h.memory(2 * GiB);
    Decision d = h.exit_code(exit_code::oom);
    auto f = first_of<Finish>(d);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->status, JobStatus::failed);
    EXPECT_EQ(h.state.status, JobStatus::failed);
    const std::string& m = h.state.message;
    EXPECT_NE(m.find("no tier left"), std::string::npos) << m;
    EXPECT_NE(m.find("accelerated"), std::string::npos) << m;
    EXPECT_NE(m.find("3.00 GiB"), std::string::npos) << m;
    EXPECT_NE(m.find("5.50 GiB"), std::string::npos) << m;
    EXPECT_NE(m.find("2.00 GiB"), std::string::npos) << m;
    EXPECT_NE(m.find("oom-killed"), std::string::npos) << m;
    EXPECT_FALSE(first_of<Launch>(d));
}

// ---- crashes ----

TEST(DaemonDecision, BackoffDoublesUpToTheCap) {
    Harness h;
    h.config.supervisor.retry_budget = 100;
    h.start();
    std::vector<double> delays;
    for (int i = 0; i < 6; ++i) {
        Decision d = h.killed(SIGSEGV);
        auto t = first_of<StartTimer>(d);
        ASSERT_TRUE(t);
        delays.push_back(t->seconds);
        h.feed(TimerExpired{TimerKind::backoff});
        h.started();
    }
    EXPECT_EQ(delays, (std::vector<double>{1, 2, 4, 8, 8, 8}));
}

TEST(DaemonDecision, RetryBudgetCountsOnlyLaunchesWithoutProgress) {
    Harness h;  // budget 3
    h.start();
    h.killed(SIGSEGV);
    h.feed(TimerExpired{TimerKind::backoff});
    h.started();
    h.killed(SIGSEGV);
    EXPECT_EQ(h.state.failures_without_progress, 2);
    h.feed(TimerExpired{TimerKind::backoff});
    h.started();
    // This launch writes a checkpoint before crashing: the count starts over, backoff too.
    h.report(Json{{"type", "checkpoint"}, {"path", "/r/checkpoints/step-10.pt"}, {"step", 10}});
    Decision d = h.killed(SIGSEGV);
    EXPECT_EQ(h.state.failures_without_progress, 0);
    auto t = first_of<StartTimer>(d);
    ASSERT_TRUE(t);
    EXPECT_DOUBLE_EQ(t->seconds, 1);
    EXPECT_EQ(h.state.last_checkpoint_step, 10);
    for (int i = 0; i < 2; ++i) {
        h.feed(TimerExpired{TimerKind::backoff});
        h.started();
        Decision c = h.killed(SIGABRT);
        EXPECT_FALSE(first_of<Finish>(c));
    }
    h.feed(TimerExpired{TimerKind::backoff});
    h.started();
    Decision last = h.killed(SIGABRT);
    auto f = first_of<Finish>(last);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->status, JobStatus::failed);
    EXPECT_NE(h.state.message.find("3 times in a row"), std::string::npos) << h.state.message;
    EXPECT_EQ(h.state.tier, 0);  // a crash never moves tiers
}

TEST(DaemonDecision, StopCheckpointAtTheResumeStepIsNoProgress) {
    Harness h;  // budget 3
    h.state.last_checkpoint_step = 40;
    h.start();
    for (int i = 0; i < 3; ++i) {
        h.report(Json{{"type", "hello"}, {"resumed_step", 40}, {"total_steps", 100}});
        // The worker hangs, answers SIGTERM with a stop checkpoint of the step it resumed from.
        h.feed(TimerExpired{TimerKind::heartbeat});
        h.report(Json{{"type", "checkpoint"}, {"path", "/r/step-40.pt"}, {"step", 40}});
        Decision d = h.exit_code(exit_code::requested_stop);
        EXPECT_EQ(h.state.failures_without_progress, i + 1);
        if (i < 2) {
            h.feed(TimerExpired{TimerKind::backoff});
            h.started();
        } else {
            auto f = first_of<Finish>(d);
            ASSERT_TRUE(f);
            EXPECT_EQ(f->status, JobStatus::failed);
        }
    }
}

TEST(DaemonDecision, ACheckpointPastTheResumeStepIsProgress) {
    Harness h;
    h.config.supervisor.retry_budget = 1;
    h.state.last_checkpoint_step = 40;
    h.start();
    h.report(Json{{"type", "hello"}, {"resumed_step", 40}, {"total_steps", 100}});
    h.report(Json{{"type", "checkpoint"}, {"path", "/r/step-42.pt"}, {"step", 42}});
    Decision d = h.killed(SIGSEGV);
    EXPECT_FALSE(first_of<Finish>(d));
    EXPECT_EQ(h.state.failures_without_progress, 0);
    EXPECT_EQ(h.state.phase, WorkerPhase::backoff);
}

TEST(DaemonDecision, CriticalPressureIsLatchedForOneLaunchOnly) {
    Harness h;
    h.start();
    h.memory(1 * GiB, std::nullopt, /*pressure=*/100.0);
    EXPECT_TRUE(h.state.critical_pressure_seen);
    Decision crash = h.killed(SIGSEGV);  // a crash: the same tier again after the backoff
    EXPECT_EQ(journal_entry(crash, "exit").value("class", ""), "crash");
    h.feed(TimerExpired{TimerKind::backoff});
    h.started();
    EXPECT_FALSE(h.state.critical_pressure_seen);
    h.memory(1 * GiB, std::nullopt, /*pressure=*/0.0);
    Decision d = h.killed(SIGKILL);  // nothing critical in this launch: a crash
    EXPECT_EQ(journal_entry(d, "exit").value("class", ""), "crash");
}

TEST(DaemonDecision, CriticalPressureCountsAtItsFixedLevelWhateverTheThreshold) {
    Harness h;
    h.config.supervisor.pressure_threshold = 100;  // only critical counts as pressure
    h.start();
    h.memory(1 * GiB, std::nullopt, /*pressure=*/99.9);
    EXPECT_FALSE(h.state.critical_pressure_seen);
    h.memory(1 * GiB, std::nullopt, /*pressure=*/100.0);
    EXPECT_TRUE(h.state.critical_pressure_seen);
}

TEST(DaemonDecision, AForcedShutdownKillNearTheLimitKeepsTheTier) {
    Harness h;
    h.config.supervisor.soft_limit_fraction = 0.99;
    h.start();
    h.feed(Shutdown{false});
    h.memory(static_cast<std::uint64_t>(7.95 * GiB));  // stopping: no soft-limit move
    Decision k = h.feed(Shutdown{true});
    ASSERT_TRUE(first_of<SignalWorker>(k));
    Decision d = h.killed(SIGKILL);
    EXPECT_EQ(journal_entry(d, "exit").value("class", ""), "requested");
    EXPECT_FALSE(journaled(d, "tier-move"));
    EXPECT_EQ(h.state.tier, 0);
    auto f = first_of<Finish>(d);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->status, JobStatus::stopped);
}

TEST(DaemonDecision, AStopThatRanOutOfGraceIsRequestedNotOomKilled) {
    Harness h;
    h.config.supervisor.soft_limit_fraction = 0.99;
    h.start();
    h.feed(ControlRequest{ControlCommand::pause, ""});
    h.memory(static_cast<std::uint64_t>(7.95 * GiB));  // stopping: no soft-limit move
    h.feed(TimerExpired{TimerKind::stop});
    h.feed(TimerExpired{TimerKind::grace});
    Decision d = h.killed(SIGKILL);
    EXPECT_EQ(journal_entry(d, "exit").value("class", ""), "requested");
    EXPECT_EQ(h.state.tier, 0);
    EXPECT_EQ(h.state.status, JobStatus::paused);
}

TEST(DaemonDecision, AWorkerThatCannotBeExecutedFailsTheJobAtOnce) {
    Harness h;
    h.feed(StartJob{});
    Decision d = h.feed(
        SpawnFailed{"cannot start /nowhere/smartcash-worker: No such file or directory", true});
    auto f = first_of<Finish>(d);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->status, JobStatus::failed);
    EXPECT_FALSE(first_of<StartTimer>(d));
    EXPECT_NE(h.state.message.find("No such file or directory"), std::string::npos)
        << h.state.message;
    EXPECT_EQ(h.state.launches, 1);
}

TEST(DaemonDecision, SpawnFailureIsACrashWithinTheBudget) {
    Harness h;
    h.config.supervisor.retry_budget = 2;
    h.feed(StartJob{});
    Decision d = h.feed(SpawnFailed{"cannot execute /nowhere/smartcash-worker"});
    EXPECT_TRUE(journaled(d, "spawn-failed"));
    EXPECT_EQ(h.state.phase, WorkerPhase::backoff);
    h.feed(TimerExpired{TimerKind::backoff});
    Decision f = h.feed(SpawnFailed{"cannot execute /nowhere/smartcash-worker"});
    ASSERT_TRUE(first_of<Finish>(f));
    EXPECT_NE(h.state.message.find("/nowhere/smartcash-worker"), std::string::npos)
        << h.state.message;
}

TEST(DaemonDecision, HangGetsTermThenGraceThenKill) {
    Harness h;
    h.start();
    Decision beat = h.report(Json{{"type", "progress"}, {"step", 5}, {"loss", 1.5}});
    auto rearm = first_of<StartTimer>(beat);
    ASSERT_TRUE(rearm);
    EXPECT_EQ(rearm->kind, TimerKind::heartbeat);
    EXPECT_EQ(h.state.step, 5);

    Decision d = h.feed(TimerExpired{TimerKind::heartbeat});
    EXPECT_TRUE(journaled(d, "hang"));
    auto s = first_of<SignalWorker>(d);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->signal, SIGTERM);
    auto g = first_of<StartTimer>(d);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->kind, TimerKind::grace);
    EXPECT_DOUBLE_EQ(g->seconds, 30);

    Decision k = h.feed(TimerExpired{TimerKind::grace});
    auto kill = first_of<SignalWorker>(k);
    ASSERT_TRUE(kill);
    EXPECT_EQ(kill->signal, SIGKILL);

    Decision e = h.killed(SIGKILL);
    EXPECT_EQ(journal_entry(e, "exit").value("class", ""), "hang");
    EXPECT_EQ(h.state.phase, WorkerPhase::backoff);
    EXPECT_EQ(h.state.failures_without_progress, 1);
}

TEST(DaemonDecision, StaleTimersAreIgnored) {
    Harness h;
    h.start();
    EXPECT_TRUE(h.feed(TimerExpired{TimerKind::grace}).actions.empty());
    EXPECT_TRUE(h.feed(TimerExpired{TimerKind::backoff}).actions.empty());
    EXPECT_EQ(h.state.phase, WorkerPhase::running);
}

// ---- memory ----

TEST(DaemonDecision, SoftLimitDowngradesWithoutLosingSteps) {
    Harness h;
    h.start();
    EXPECT_FALSE(first_of<SendCommand>(h.memory(6 * GiB)));  // 75% of 8 GiB: fine
    Decision d = h.memory(7 * GiB);
    auto c = first_of<SendCommand>(d);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->cmd, "checkpoint_and_stop");
    EXPECT_EQ(c->reason, "memory");
    EXPECT_TRUE(journaled(d, "soft-limit"));
    EXPECT_EQ(h.state.phase, WorkerPhase::stopping);
    // Further samples while it stops do not ask again.
    EXPECT_FALSE(first_of<SendCommand>(h.memory(7 * GiB)));
    h.report(Json{{"type", "checkpoint"}, {"path", "p"}, {"step", 42}, {"kind", "stop"}});
    Decision e = h.exit_code(exit_code::requested_stop);
    auto l = first_of<Launch>(e);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->tier, 1);
    EXPECT_EQ(journal_entry(e, "tier-move").value("reason", ""), "soft-limit");
    EXPECT_EQ(h.state.last_checkpoint_step, 42);
}

TEST(DaemonDecision, LowSystemMemoryIsASoftLimit) {
    Harness h;
    h.start();
    Decision d = h.memory(1 * GiB, /*available=*/100ull << 20);
    auto c = first_of<SendCommand>(d);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->reason, "memory");
}

TEST(DaemonDecision, SustainedPressureIsASoftLimit) {
    Harness h;
    h.config.supervisor.pressure_seconds = 10;
    h.start();
    EXPECT_FALSE(first_of<SendCommand>(h.memory(GiB, std::nullopt, 60.0)));
    h.now += 5;
    EXPECT_FALSE(first_of<SendCommand>(h.memory(GiB, std::nullopt, 60.0)));
    h.now += 1;
    EXPECT_FALSE(first_of<SendCommand>(h.memory(GiB, std::nullopt, 10.0)));  // dipped: restart
    h.now += 6;
    EXPECT_FALSE(first_of<SendCommand>(h.memory(GiB, std::nullopt, 60.0)));
    h.now += 10;
    EXPECT_TRUE(first_of<SendCommand>(h.memory(GiB, std::nullopt, 60.0)));
}

TEST(DaemonDecision, SoftLimitAtLastTierIsLeftToTheHardLimit) {
    Harness h;
    h.state.tier = 2;
    h.start();
    Decision d = h.memory(static_cast<std::uint64_t>(3.5 * GiB));
    EXPECT_FALSE(first_of<SendCommand>(d));
    EXPECT_TRUE(journaled(d, "soft-limit-last-tier"));
    Decision k = h.memory(4 * GiB);
    ASSERT_TRUE(first_of<SignalWorker>(k));
}

TEST(DaemonDecision, HardLimitKillIsClassifiedOomKilled) {
    Harness h;
    h.start();
    Decision d = h.memory(8 * GiB);
    auto s = first_of<SignalWorker>(d);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->signal, SIGKILL);
    Json j = journal_entry(d, "watchdog-kill");
    EXPECT_EQ(j.value("rss", std::uint64_t{0}), 8 * GiB);
    EXPECT_EQ(h.state.kill_reason, KillReason::memory);
    EXPECT_FALSE(first_of<SignalWorker>(h.memory(9 * GiB)));  // only once
    Decision e = h.killed(SIGKILL);
    EXPECT_EQ(journal_entry(e, "exit").value("class", ""), "oom-killed");
    EXPECT_EQ(h.state.tier_records["accelerated"].peak_rss, 9 * GiB);
    ASSERT_TRUE(first_of<Launch>(e));
    EXPECT_EQ(h.state.tier, 1);
}

// ---- promotion ----

struct PromotionHarness : Harness {
    // Bring the job down to the cpu tier by an oom at accelerated.
    void to_cpu() {
        start();
        exit_code(exit_code::oom);
        started();
        ASSERT_EQ(state.tier, 1);
    }
    Decision epoch_end() { return report(Json{{"type", "epoch_end"}, {"epoch", 1}, {"step", 10}}); }
};

TEST(DaemonDecision, PromotionAfterStableStretchWithHeadroom) {
    PromotionHarness h;
    h.to_cpu();
    h.memory(3 * GiB);  // < 0.5 x 8 GiB
    h.now += 50;
    EXPECT_FALSE(first_of<SendCommand>(h.epoch_end()));  // not stable long enough
    h.now += 60;
    Decision d = h.epoch_end();
    auto c = first_of<SendCommand>(d);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->cmd, "checkpoint_and_stop");
    EXPECT_EQ(c->reason, "promotion");
    Decision e = h.exit_code(exit_code::requested_stop);
    auto l = first_of<Launch>(e);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->tier, 0);
    EXPECT_TRUE(journaled(e, "promoted"));
}

TEST(DaemonDecision, NoPromotionAtTheLastEpochsEnd) {
    PromotionHarness h;
    h.to_cpu();
    h.report(Json{{"type", "hello"}, {"resumed_step", 0}, {"total_steps", 10}});
    h.now += 500;
    EXPECT_FALSE(first_of<SendCommand>(h.epoch_end()));  // step 10 of 10: the worker is finishing
}

TEST(DaemonDecision, NoPromotionWithoutHeadroomOrWhenDisabled) {
    PromotionHarness h;
    h.to_cpu();
    h.memory(5 * GiB);  // >= 0.5 x 8 GiB
    h.now += 500;
    EXPECT_FALSE(first_of<SendCommand>(h.epoch_end()));

    PromotionHarness off;
    off.config.supervisor.promotion.enabled = false;
    off.to_cpu();
    off.now += 500;
    EXPECT_FALSE(first_of<SendCommand>(off.epoch_end()));
}

TEST(DaemonDecision, FailedPromotionGoesBackAndDoublesTheWaitUpToTheCap) {
    PromotionHarness h;
    h.to_cpu();
    std::vector<double> waits;
    double wait = 100;
    for (int i = 0; i < 3; ++i) {
        h.now += wait - 1;
        EXPECT_FALSE(first_of<SendCommand>(h.epoch_end())) << i;
        h.now += 1;
        ASSERT_TRUE(first_of<SendCommand>(h.epoch_end())) << i;
        h.exit_code(exit_code::requested_stop);
        h.started();
        ASSERT_EQ(h.state.tier, 0);
        h.now += 10;  // soon after
        Decision d = h.exit_code(exit_code::oom);
        ASSERT_TRUE(journaled(d, "promotion-failed")) << i;
        h.started();
        ASSERT_EQ(h.state.tier, 1);
        wait = h.state.promotion_wait;
        waits.push_back(wait);
    }
    EXPECT_EQ(waits, (std::vector<double>{200, 350, 350}));
}

// A promoted tier that hits the soft limit within stable_for has failed, even when the worker
// takes longer than that to checkpoint and get out (a slow start, a long step).
TEST(DaemonDecision, PromotionFailureIsJudgedWhenTheLimitIsHitNotWhenTheWorkerExits) {
    PromotionHarness h;
    h.to_cpu();
    h.now += 100;
    h.epoch_end();
    h.exit_code(exit_code::requested_stop);
    h.started();
    ASSERT_EQ(h.state.tier, 0);
    h.report(Json{{"type", "hello"}, {"resumed_step", 10}});
    h.now += 10;
    Decision soft = h.memory(7 * GiB);  // >= 0.85 x 8 GiB
    ASSERT_TRUE(journaled(soft, "soft-limit"));
    h.now += 500;  // the stop takes long
    Decision d = h.exit_code(exit_code::requested_stop);
    EXPECT_TRUE(journaled(d, "promotion-failed"));
    EXPECT_EQ(h.state.tier, 1);
    EXPECT_EQ(h.state.promotion_wait, 200);
}

TEST(DaemonDecision, PromotionThatHoldsResetsTheWait) {
    PromotionHarness h;
    h.to_cpu();
    h.now += 100;
    h.epoch_end();
    h.exit_code(exit_code::requested_stop);
    h.started();
    h.now += 10;
    h.exit_code(exit_code::oom);
    h.started();
    EXPECT_EQ(h.state.promotion_wait, 200);
    h.now += 200;
    h.epoch_end();
    h.exit_code(exit_code::requested_stop);
    h.started();
    h.now += 30;  // the worker takes a while to start; the trial runs from its hello
    h.report(Json{{"type", "hello"}, {"resumed_step", 10}});
    h.now += 90;
    EXPECT_FALSE(journaled(h.epoch_end(), "promotion-kept"));
    h.now += 60;  // past stable_seconds at the promoted tier
    Decision d = h.epoch_end();
    EXPECT_TRUE(journaled(d, "promotion-kept"));
    EXPECT_EQ(h.state.promotion_wait, 0);
    // A later oom is an ordinary move down, not a failed promotion.
    Decision e = h.exit_code(exit_code::oom);
    EXPECT_FALSE(journaled(e, "promotion-failed"));
}

// ---- control and shutdown ----

TEST(DaemonDecision, PauseResumeAndStop) {
    Harness h;
    h.start();
    Decision p = h.feed(ControlRequest{ControlCommand::pause, ""});
    EXPECT_TRUE(p.ok);
    auto c = first_of<SendCommand>(p);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->reason, "pause");
    h.exit_code(exit_code::requested_stop);
    EXPECT_EQ(h.state.status, JobStatus::paused);
    EXPECT_EQ(h.state.phase, WorkerPhase::idle);
    Decision r = h.feed(ControlRequest{ControlCommand::resume, ""});
    EXPECT_TRUE(r.ok);
    ASSERT_TRUE(first_of<Launch>(r));
    h.started();
    Decision bad = h.feed(ControlRequest{ControlCommand::resume, ""});
    EXPECT_FALSE(bad.ok);
    EXPECT_FALSE(bad.error.empty());
    h.feed(ControlRequest{ControlCommand::stop, ""});
    Decision s = h.exit_code(exit_code::requested_stop);
    auto f = first_of<Finish>(s);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->status, JobStatus::stopped);
}

TEST(DaemonDecision, TierRequestMovesAfterCheckpoint) {
    Harness h;
    h.start();
    Decision bad = h.feed(ControlRequest{ControlCommand::tier, "nope"});
    EXPECT_FALSE(bad.ok);
    Decision d = h.feed(ControlRequest{ControlCommand::tier, "minimal"});
    EXPECT_TRUE(d.ok);
    ASSERT_TRUE(first_of<SendCommand>(d));
    Decision e = h.exit_code(exit_code::requested_stop);
    auto l = first_of<Launch>(e);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->tier, 2);
}

TEST(DaemonDecision, ShutdownAsksForACheckpointThenForceKills) {
    Harness h;
    h.start();
    Decision d = h.feed(Shutdown{false});
    auto c = first_of<SendCommand>(d);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->reason, "shutdown");
    auto t = first_of<StartTimer>(d);
    ASSERT_TRUE(t);
    EXPECT_DOUBLE_EQ(t->seconds, 30);
    Decision k = h.feed(Shutdown{true});
    auto s = first_of<SignalWorker>(k);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->signal, SIGKILL);
    Decision e = h.killed(SIGKILL);
    auto f = first_of<Finish>(e);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->status, JobStatus::stopped);
    EXPECT_FALSE(first_of<Launch>(e));
    EXPECT_EQ(h.state.tier, 0);
}

TEST(DaemonDecision, ShutdownDuringOomRecordsTheTierMoveButDoesNotLaunch) {
    Harness h;
    h.start();
    h.feed(Shutdown{false});
    Decision e = h.exit_code(exit_code::oom);
    EXPECT_FALSE(first_of<Launch>(e));
    EXPECT_EQ(h.state.tier, 1);
    ASSERT_TRUE(first_of<Finish>(e));
}

// ---- restart ----

TEST(DaemonDecision, RestartFromStateJsonContinuesAtTheRecordedTier) {
    Harness h;
    h.start();
    h.memory(7 * GiB + GiB / 2);
    h.killed(SIGKILL);
    h.started();
    h.report(Json{{"type", "checkpoint"}, {"path", "/r/c/step-20.pt"}, {"step", 20}});
    ASSERT_EQ(h.state.tier, 1);
    const Json saved = state_to_json(h.state, h.config);
    EXPECT_EQ(saved.value("tier", ""), "cpu");

    Harness again;
    ASSERT_FALSE(state_from_json(saved, again.config, &again.state));
    EXPECT_EQ(again.state.phase, WorkerPhase::idle);
    Decision d = again.feed(StartJob{});
    auto l = first_of<Launch>(d);
    ASSERT_TRUE(l);
    EXPECT_EQ(l->tier, 1);
    EXPECT_EQ(again.state.last_checkpoint_step, 20);
    EXPECT_EQ(again.state.launches, 3);
    EXPECT_EQ(again.state.tier_records["accelerated"].last_outcome, "oom-killed");
    EXPECT_EQ(again.state.tier_records["accelerated"].peak_rss, 7 * GiB + GiB / 2);
}

TEST(DaemonDecision, RestartOfADoneJobDoesNothingAndAPausedOneStaysPaused) {
    Harness done;
    done.state.status = JobStatus::done;
    Decision d = done.feed(StartJob{});
    EXPECT_FALSE(first_of<Launch>(d));
    auto f = first_of<Finish>(d);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->status, JobStatus::done);

    Harness paused;
    paused.state.status = JobStatus::paused;
    Decision p = paused.feed(StartJob{});
    EXPECT_FALSE(first_of<Launch>(p));
    EXPECT_FALSE(first_of<Finish>(p));
    EXPECT_TRUE(paused.feed(ControlRequest{ControlCommand::resume, ""}).ok);
}

TEST(DaemonDecision, StateJsonRejectsGarbage) {
    Harness h;
    EXPECT_TRUE(state_from_json(Json::array(), h.config, &h.state));
    EXPECT_TRUE(state_from_json(Json{{"status", "sleeping"}}, h.config, &h.state));
}

}  // namespace
}  // namespace smartcash::daemon
