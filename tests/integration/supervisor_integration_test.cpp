// smartcashd with the real smartcash-worker on the tiny model (tests/fixtures/supervisor_*.yaml):
// every fault of the worker exit contract caused for real, and the supervisor's answer checked in
// the journal, state.json, the exit codes and the checkpoints themselves.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <thread>

#include "common/run_dir.hpp"
#include "tests/integration/harness.hpp"

namespace smartcash::integration {
namespace {

namespace fs = std::filesystem;

// The tier history the final checkpoint carries: tier name -> the step it started at (the last
// time it was entered).
std::map<std::string, std::int64_t> tier_history(const Json& info) {
    std::map<std::string, std::int64_t> out;
    if (info.contains("tiers") && info["tiers"].is_array())
        for (const auto& t : info["tiers"])
            out[t.value("tier", "")] = t.value("from_step", std::int64_t{-1});
    return out;
}

// What every job that reached the end must show: done in state.json, and a final checkpoint the
// worker itself calls valid and finished.
void expect_done(const Scratch& s, const std::string& tier) {
    const Json st = state_json(s);
    EXPECT_EQ(st.value("status", ""), "done") << st.dump(2);
    EXPECT_EQ(st.value("tier", ""), tier) << st.dump(2);
    EXPECT_FALSE(fs::exists(run_dir::socket(s.run())));
    const Json info = checkpoint_info(newest_checkpoint(s));
    EXPECT_TRUE(info.value("valid", false)) << info.dump(2);
    EXPECT_TRUE(info.value("finished", false)) << info.dump(2);
    EXPECT_EQ(info.value("tier", ""), tier);
}

TEST(IntegrationTiers, SoftLimitCheckpointsAndMovesDownWithNoStepLost) {
    Scratch s("soft");
    Daemon d(s, fixture("supervisor_soft.yaml"), s.ballast_wrapper());
    ASSERT_EQ(d.wait(job_timeout), 0) << d.stderr_text();
    const auto all = events(s);
    const auto exits = events_named(s, "exit");
    ASSERT_EQ(exits.size(), 2u) << dump(all);
    EXPECT_EQ(exits[0].value("tier", ""), "big");
    EXPECT_EQ(exits[0].value("class", ""), "requested");
    EXPECT_EQ(exits[0].value("exit_code", 0), 76);
    EXPECT_EQ(exits[0].value("stop_reason", ""), "memory");
    EXPECT_EQ(exits[1].value("class", ""), "done");
    ASSERT_EQ(events_named(s, "soft-limit").size(), 1u) << dump(all);
    EXPECT_TRUE(events_named(s, "watchdog-kill").empty()) << dump(all);
    const auto moves = events_named(s, "tier-move");
    ASSERT_EQ(moves.size(), 1u) << dump(all);
    EXPECT_EQ(moves[0].value("from", ""), "big");
    EXPECT_EQ(moves[0].value("to", ""), "small");
    EXPECT_EQ(moves[0].value("reason", ""), "soft-limit");

    // The stop checkpoint is the last step finished at big, and small starts exactly there.
    std::string stop_path;
    std::int64_t stop_step = -1;
    for (const auto& c : events_named(s, "checkpoint"))
        if (c.value("kind", "") == "stop") {
            stop_path = c.value("path", "");
            stop_step = step_of(c);
        }
    ASSERT_GE(stop_step, 4) << dump(all);
    const Json stop_info = checkpoint_info(s.kept(stop_path));
    EXPECT_TRUE(stop_info.value("valid", false)) << stop_info.dump(2);
    EXPECT_EQ(step_of(stop_info), stop_step);
    EXPECT_EQ(stop_info.value("kind", ""), "stop");
    EXPECT_EQ(stop_info.value("tier", ""), "big");
    EXPECT_EQ(last_step_at_tier(s, "big"), stop_step)
        << "steps finished at big after the stop checkpoint";
    const auto hellos = events_named(s, "hello");
    ASSERT_EQ(hellos.size(), 2u);
    EXPECT_EQ(hellos[1].value("tier", ""), "small");
    EXPECT_EQ(step_of(hellos[1], "resumed_step"), stop_step);
    const auto history = tier_history(checkpoint_info(newest_checkpoint(s)));
    EXPECT_EQ(history.at("big"), 0);
    EXPECT_EQ(history.at("small"), stop_step);
    expect_done(s, "small");
    const Json st = state_json(s);
    EXPECT_EQ(st["tiers"]["big"].value("last_outcome", ""), "requested");
    EXPECT_GE(st["tiers"]["big"].value("peak_rss", std::uint64_t{0}),
              static_cast<std::uint64_t>(0.6 * (2048ull << 20)));  // 0.6 x 2 GiB
}

TEST(IntegrationTiers, WatchdogKillMovesDownLosingAtMostTheCheckpointInterval) {
    Scratch s("watchdog");
    Daemon d(s, fixture("supervisor_watchdog.yaml"), s.ballast_wrapper());
    ASSERT_EQ(d.wait(job_timeout), 0) << d.stderr_text();
    const auto all = events(s);
    const auto kills = events_named(s, "watchdog-kill");
    ASSERT_EQ(kills.size(), 1u) << dump(all);
    EXPECT_GE(kills[0].value("rss", std::uint64_t{0}), 1536ull << 20);
    const auto exits = events_named(s, "exit");
    ASSERT_EQ(exits.size(), 2u) << dump(all);
    EXPECT_EQ(exits[0].value("class", ""), "oom-killed");
    EXPECT_EQ(exits[0].value("signal", 0), SIGKILL);
    EXPECT_EQ(exits[1].value("class", ""), "done");
    const auto moves = events_named(s, "tier-move");
    ASSERT_EQ(moves.size(), 1u) << dump(all);
    EXPECT_EQ(moves[0].value("reason", ""), "oom-killed");
    EXPECT_EQ(moves[0].value("to", ""), "small");

    // Resumed from the newest checkpoint big wrote; what big finished after it is lost, at most
    // checkpoint_every_steps (2) steps. The kill can land between a checkpoint's rename and its
    // report, so the newest one on disk may be one the journal never heard of: never older.
    std::int64_t last_journaled = -1;
    for (const auto& e : all) {
        if (e.value("event", "") == "exit") break;
        if (e.value("event", "") == "checkpoint") last_journaled = step_of(e);
    }
    ASSERT_GE(last_journaled, 4) << dump(all);
    const auto hellos = events_named(s, "hello");
    ASSERT_EQ(hellos.size(), 2u);
    const std::int64_t resumed = step_of(hellos[1], "resumed_step");
    EXPECT_GE(resumed, last_journaled) << dump(all);
    EXPECT_LE(resumed - last_journaled, 2) << dump(all);
    const std::int64_t finished_at_big = last_step_at_tier(s, "big");
    EXPECT_GE(finished_at_big, resumed);
    EXPECT_LE(finished_at_big - resumed, 2) << "steps lost";
    const auto history = tier_history(checkpoint_info(newest_checkpoint(s)));
    EXPECT_EQ(history.at("small"), resumed);
    expect_done(s, "small");
    EXPECT_EQ(state_json(s)["tiers"]["big"].value("last_outcome", ""), "oom-killed");
}

TEST(IntegrationTiers, LimitBelowWhatTheWorkerNeedsIsLeftForTheNextTier) {
    Scratch s("too-small");
    Daemon d(s, fixture("supervisor_too_small.yaml"), SMARTCASH_WORKER_PATH);
    ASSERT_EQ(d.wait(job_timeout), 0) << d.stderr_text();
    const auto all = events(s);
    ASSERT_EQ(events_named(s, "watchdog-kill").size(), 1u) << dump(all);
    const auto exits = events_named(s, "exit");
    ASSERT_EQ(exits.size(), 2u) << dump(all);
    EXPECT_EQ(exits[0].value("class", ""), "oom-killed");
    const auto moves = events_named(s, "tier-move");
    ASSERT_EQ(moves.size(), 1u) << dump(all);
    EXPECT_EQ(moves[0].value("to", ""), "small");
    // Whatever big managed before the kill, small resumes at its last checkpoint (or at 0).
    const auto hellos = events_named(s, "hello");
    ASSERT_FALSE(hellos.empty());
    EXPECT_LE(last_step_at_tier(s, "big") -
                  std::max<std::int64_t>(step_of(hellos.back(), "resumed_step"), 0),
              2);
    expect_done(s, "small");
}

TEST(IntegrationTiers, InProcessOomResumesAtTheEmergencyCheckpointOneTierDown) {
    Scratch s("oom");
    Daemon d(s, fixture("supervisor_oom.yaml"), SMARTCASH_WORKER_PATH);
    ASSERT_EQ(d.wait(job_timeout), 0) << d.stderr_text();
    const auto all = events(s);
    const auto ooms = events_named(s, "worker-oom");
    ASSERT_EQ(ooms.size(), 1u) << dump(all);
    const std::int64_t oom_step = step_of(ooms[0]);
    const std::string emergency = ooms[0].value("checkpoint", "");
    EXPECT_EQ(oom_step, 3) << "the hook caps the address space as step 3 begins";
    ASSERT_FALSE(emergency.empty()) << dump(all);
    const auto exits = events_named(s, "exit");
    ASSERT_EQ(exits.size(), 2u) << dump(all);
    EXPECT_EQ(exits[0].value("class", ""), "oom");
    EXPECT_EQ(exits[0].value("exit_code", 0), 75);
    const auto moves = events_named(s, "tier-move");
    ASSERT_EQ(moves.size(), 1u) << dump(all);
    EXPECT_EQ(moves[0].value("reason", ""), "oom");
    EXPECT_EQ(moves[0].value("to", ""), "small");

    const Json info = checkpoint_info(s.kept(emergency));
    EXPECT_TRUE(info.value("valid", false)) << info.dump(2);
    EXPECT_EQ(info.value("kind", ""), "emergency");
    EXPECT_EQ(step_of(info), oom_step);
    EXPECT_EQ(last_step_at_tier(s, "big"), oom_step) << "no finished step is lost";
    const auto hellos = events_named(s, "hello");
    ASSERT_EQ(hellos.size(), 2u);
    EXPECT_EQ(hellos[1].value("tier", ""), "small");
    EXPECT_EQ(step_of(hellos[1], "resumed_step"), oom_step);
    EXPECT_NE(slurp(run_dir::logs(s.run()) + "/worker-1.log").find("out of memory"),
              std::string::npos);
    expect_done(s, "small");
    EXPECT_EQ(state_json(s)["tiers"]["big"].value("last_outcome", ""), "oom");
}

TEST(IntegrationFaults, WorkerKilledFarBelowItsLimitIsACrashRetriedAtTheSameTier) {
    Scratch s("crash");
    Daemon d(s, fixture("supervisor_base.yaml"), SMARTCASH_WORKER_PATH);
    int pid = 0;
    ASSERT_TRUE(d.wait_for_event(
        [&](const Json& e) {
            if (e.value("event", "") == "worker-started") pid = e.value("pid", 0);
            return e.value("event", "") == "checkpoint" && step_of(e) >= 4;
        },
        job_timeout))
        << d.stderr_text();
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    ASSERT_EQ(d.wait(job_timeout), 0) << d.stderr_text();
    const auto all = events(s);
    const auto exits = events_named(s, "exit");
    ASSERT_EQ(exits.size(), 2u) << dump(all);
    EXPECT_EQ(exits[0].value("class", ""), "crash");
    EXPECT_EQ(exits[0].value("signal", 0), SIGKILL);
    EXPECT_LT(exits[0].value("peak_rss", std::uint64_t{0}), 1ull << 30);
    EXPECT_TRUE(exits[0].value("progress", false));
    EXPECT_EQ(events_named(s, "backoff").size(), 1u) << dump(all);
    EXPECT_TRUE(events_named(s, "tier-move").empty()) << dump(all);
    const auto launches = events_named(s, "launch");
    ASSERT_EQ(launches.size(), 2u);
    EXPECT_EQ(launches[1].value("tier", ""), "big");

    std::int64_t last_checkpoint = -1;
    for (const auto& e : all) {
        if (e.value("event", "") == "exit") break;
        if (e.value("event", "") == "checkpoint") last_checkpoint = step_of(e);
    }
    const auto hellos = events_named(s, "hello");
    ASSERT_EQ(hellos.size(), 2u);
    // The newest checkpoint on disk; a kill right after a save can leave it unjournaled.
    const std::int64_t resumed = step_of(hellos[1], "resumed_step");
    EXPECT_GE(resumed, last_checkpoint) << dump(all);
    EXPECT_LE(resumed - last_checkpoint, 2) << dump(all);
    EXPECT_GE(last_checkpoint, 4);
    expect_done(s, "big");
    EXPECT_EQ(state_json(s).value("failures_without_progress", -1), 0);
}

TEST(IntegrationFaults, DataErrorSeenByTheWorkerIsFatalAfterOneLaunch) {
    Scratch s("data-error");
    Daemon d(s, fixture("supervisor_config_error.yaml"), SMARTCASH_WORKER_PATH);
    ASSERT_EQ(d.wait(job_timeout), 1) << d.stderr_text();
    const auto all = events(s);
    EXPECT_EQ(events_named(s, "launch").size(), 1u) << dump(all);
    const auto exits = events_named(s, "exit");
    ASSERT_EQ(exits.size(), 1u) << dump(all);
    EXPECT_EQ(exits[0].value("class", ""), "fatal");
    EXPECT_EQ(exits[0].value("exit_code", 0), 65);
    const auto errors = events_named(s, "worker-error");
    ASSERT_EQ(errors.size(), 1u) << dump(all);
    EXPECT_EQ(errors[0].value("kind", ""), "data");
    EXPECT_NE(errors[0].value("message", "").find("no-such-dataset"), std::string::npos)
        << dump(errors);
    const auto failed = events_named(s, "failed");
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_NE(failed[0].value("message", "").find("no-such-dataset"), std::string::npos)
        << dump(failed);
    EXPECT_TRUE(events_named(s, "backoff").empty());

    // The supervisor has exited; smartcashctl status still tells why, from state.json.
    std::string out;
    // Exit 3: no supervisor answered; the status printed is state.json's.
    ASSERT_EQ(run_program({SMARTCASHCTL_PATH, "--run-dir", s.run(), "status", "--json"}, &out), 3)
        << out;
    const Json status = Json::parse(out, nullptr, false);
    EXPECT_EQ(status.value("state", ""), "failed") << out;
    EXPECT_FALSE(status.value("supervisor_running", true));
    EXPECT_EQ(status.value("device", ""), "cpu") << out;  // the tier's, kept in state.json
    EXPECT_NE(status.value("message", "").find("data error"), std::string::npos) << out;
    EXPECT_NE(status.value("message", "").find("no-such-dataset"), std::string::npos) << out;
    EXPECT_NE(status.value("message", "").find("not retrying"), std::string::npos) << out;
    out.clear();
    ASSERT_EQ(run_program({SMARTCASHCTL_PATH, "--run-dir", s.run(), "status"}, &out), 3);
    EXPECT_NE(out.find("no-such-dataset"), std::string::npos) << out;
}

// The README's command: no --worker, so smartcashd runs the smartcash-worker next to itself.
TEST(IntegrationReadme, SmartcashdFindsTheWorkerNextToItself) {
    Scratch s("default-worker");
    Daemon d(s, fixture("supervisor_base.yaml"), /*worker=*/"");
    ASSERT_EQ(d.wait(job_timeout), 0) << d.stderr_text();
    const auto exits = events_named(s, "exit");
    ASSERT_EQ(exits.size(), 1u) << dump(events(s));
    EXPECT_EQ(exits[0].value("class", ""), "done");
    expect_done(s, "big");
}

TEST(IntegrationFaults, WorkerThatDiesAtStartEveryTimeStopsAfterTheRetryBudget) {
    Scratch s("dies-at-start");
    // false(1): /bin/false on Linux, /usr/bin/false on macOS (which has no /bin/false).
    const std::string false_program =
        std::filesystem::exists("/bin/false") ? "/bin/false" : "/usr/bin/false";
    Daemon d(s, fixture("supervisor_base.yaml"), false_program);
    ASSERT_EQ(d.wait(60s), 1) << d.stderr_text();
    const auto all = events(s);
    const auto exits = events_named(s, "exit");
    ASSERT_EQ(exits.size(), 3u) << dump(all);  // retry_budget: 3
    for (const auto& e : exits) {
        EXPECT_EQ(e.value("class", ""), "crash");
        EXPECT_EQ(e.value("exit_code", 0), 1);
        EXPECT_EQ(e.value("tier", ""), "big");
    }
    EXPECT_EQ(events_named(s, "backoff").size(), 2u) << dump(all);
    const Json st = state_json(s);
    EXPECT_EQ(st.value("status", ""), "failed");
    EXPECT_EQ(st.value("launches", 0), 3);
    EXPECT_NE(st.value("message", "").find("3 times in a row"), std::string::npos) << st.dump(2);
}

TEST(IntegrationRestart,
     KilledSupervisorLeavesNoWorkerTrainingAndARestartContinuesAtTheRecordedTier) {
    Scratch s("restart");
    const std::string worker = s.ballast_wrapper();
    std::int64_t stop_step = -1;
    std::int64_t journaled_before_kill = -1;
    int worker_pid = 0;
    {
        Daemon first(s, fixture("supervisor_restart.yaml"), worker, "-1");
        // Let the job move to small and checkpoint there at least once before the kill.
        ASSERT_TRUE(first.wait_for_event(
            [&](const Json& e) {
                const std::string name = e.value("event", "");
                if (name == "worker-started") worker_pid = e.value("pid", 0);
                if (name == "checkpoint" && e.value("kind", "") == "stop") stop_step = step_of(e);
                if (name == "checkpoint") journaled_before_kill = step_of(e);
                return name == "checkpoint" && e.value("tier", "") == "small" && stop_step >= 0 &&
                       step_of(e) > stop_step;
            },
            job_timeout))
            << first.stderr_text();
        first.kill_hard();
    }
    ASSERT_GT(worker_pid, 0);
    // The worker learns that its supervisor is gone from the kernel's SIGTERM (PR_SET_PDEATHSIG,
    // Linux) or from end of file on its command pipe (every system), whichever comes first: it
    // checkpoints and exits.
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!process_gone(worker_pid) && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    ASSERT_TRUE(process_gone(worker_pid)) << "the worker outlived its supervisor";
    EXPECT_TRUE(processes_mentioning(s.run()).empty());
    const std::string orphan_log = slurp(run_dir::logs(s.run()) + "/worker-2.log");
    EXPECT_TRUE(orphan_log.find("stopping (SIGTERM)") != std::string::npos ||
                orphan_log.find("stopping (supervisor gone)") != std::string::npos)
        << orphan_log;
    EXPECT_EQ(state_json(s).value("tier", ""), "small");

    Daemon second(s, fixture("supervisor_restart.yaml"), worker, "-2");
    ASSERT_EQ(second.wait(job_timeout), 0) << second.stderr_text();
    const auto all = events(s);
    const auto starts = events_named(s, "start");
    ASSERT_EQ(starts.size(), 2u) << dump(all);
    EXPECT_EQ(starts[1].value("tier", ""), "small");
    // Everything after the restart happens at small, from where the orphan's stop left off.
    bool after_restart = false;
    std::vector<Json> later_hellos;
    for (std::size_t i = 1; i < all.size(); ++i) {
        const Json& e = all[i];
        if (e.value("event", "") == "start") after_restart = true;
        if (!after_restart) continue;
        if (e.value("event", "") == "launch") {
            EXPECT_EQ(e.value("tier", ""), "small") << e.dump();
        }
        if (e.value("event", "") == "hello") later_hellos.push_back(e);
    }
    ASSERT_EQ(later_hellos.size(), 1u) << dump(all);
    EXPECT_GE(step_of(later_hellos[0], "resumed_step"), journaled_before_kill);
    EXPECT_EQ(events_named(s, "launch").back().value("launch", 0), 3);
    expect_done(s, "small");
}

TEST(IntegrationPromotion, MovesBackUpAndAFailedPromotionDoublesTheWait) {
    Scratch s("promotion");
    Daemon d(s, fixture("supervisor_promotion.yaml"), s.ballast_wrapper());
    ASSERT_EQ(d.wait(job_timeout), 0) << d.stderr_text();
    const auto all = events(s);
    const auto promotions = events_named(s, "promotion");
    ASSERT_GE(promotions.size(), 1u) << dump(all);
    EXPECT_EQ(promotions[0].value("from", ""), "small");
    EXPECT_EQ(promotions[0].value("to", ""), "big");
    EXPECT_GE(promotions[0].value("stable_s", 0.0), 4.0);  // stable_for
    // Moved back up: a launch at big after the first promotion, resumed where small stopped.
    bool promoted = false;
    bool launched_big = false;
    for (const auto& e : all) {
        if (e.value("event", "") == "promoted") promoted = true;
        if (promoted && e.value("event", "") == "launch" && e.value("tier", "") == "big")
            launched_big = true;
    }
    EXPECT_TRUE(launched_big) << dump(all);
    // Big still cannot hold: the promotion fails and the next wait doubles.
    const auto failed = events_named(s, "promotion-failed");
    ASSERT_GE(failed.size(), 1u) << dump(all);
    EXPECT_EQ(failed[0].value("back_to", ""), "small");
    EXPECT_DOUBLE_EQ(failed[0].value("next_wait_s", 0.0), 8.0);
    for (std::size_t i = 1; i < promotions.size(); ++i)
        EXPECT_GE(promotions[i].value("stable_s", 0.0), 8.0) << dump(promotions);
    if (failed.size() > 1) {
        EXPECT_DOUBLE_EQ(failed[1].value("next_wait_s", 0.0), 16.0);
    }
    EXPECT_GE(state_json(s).value("promotion_wait_s", 0.0), 8.0);
    expect_done(s, "small");
}

}  // namespace
}  // namespace smartcash::integration
