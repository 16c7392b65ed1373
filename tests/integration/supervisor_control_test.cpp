// smartcashd as a user drives it, with the real worker on the tiny model: signals to the
// supervisor, pause/resume/tier over the real socket through smartcashctl, bad start-up input,
// a changed config on restart, and the system-short-of-memory path on this machine's real
// MemAvailable.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "common/run_dir.hpp"
#include "tests/integration/harness.hpp"

namespace smartcash::integration {
namespace {

namespace fs = std::filesystem;

int ctl(const Scratch& s, const std::vector<std::string>& args, std::string* out) {
    std::vector<std::string> argv{SMARTCASHCTL_PATH, "--run-dir", s.run()};
    argv.insert(argv.end(), args.begin(), args.end());
    out->clear();  // run_program appends
    return run_program(argv, out);
}

bool is_event(const Json& e, const std::string& name) { return e.value("event", "") == name; }

// A config that is the fixture with one line replaced (the fixtures keep one key per line).
std::string changed_fixture(const Scratch& s, const std::string& name, const std::string& from,
                            const std::string& to) {
    std::string text = slurp(fixture("supervisor_base.yaml"));
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    const std::string path = s.file(name);
    std::ofstream(path) << text;
    return path;
}

TEST(IntegrationControl, SigtermCheckpointsExitsThreeAndARestartResumesThere) {
    Scratch s("sigterm");
    std::int64_t stop_step = -1;
    {
        Daemon d(s, fixture("supervisor_base.yaml"), SMARTCASH_WORKER_PATH);
        ASSERT_TRUE(
            d.wait_for_event([](const Json& e) { return is_event(e, "checkpoint"); }, job_timeout))
            << d.stderr_text();
        ASSERT_EQ(::kill(d.pid(), SIGTERM), 0);
        ASSERT_EQ(d.wait(60s), 3) << d.stderr_text();
        const auto all = events(s);
        for (const auto& e : all)
            if (is_event(e, "checkpoint") && e.value("kind", "") == "stop") stop_step = step_of(e);
        ASSERT_GT(stop_step, 0) << dump(all);
        const auto exits = events_named(s, "exit");
        ASSERT_EQ(exits.size(), 1u) << dump(all);
        EXPECT_EQ(exits[0].value("class", ""), "requested");
        EXPECT_EQ(exits[0].value("stop_reason", ""), "shutdown");
        EXPECT_EQ(state_json(s).value("status", ""), "stopped");
        EXPECT_EQ(checkpoint_info(newest_checkpoint(s)).value("step", std::int64_t{-1}), stop_step);
    }
    Daemon again(s, fixture("supervisor_base.yaml"), SMARTCASH_WORKER_PATH, "-2");
    ASSERT_EQ(again.wait(job_timeout), 0) << again.stderr_text();
    const auto hellos = events_named(s, "hello");
    ASSERT_EQ(hellos.size(), 2u);
    EXPECT_EQ(step_of(hellos[1], "resumed_step"), stop_step);
    EXPECT_EQ(state_json(s).value("status", ""), "done");
}

TEST(IntegrationControl, PauseTierAndResumeThroughSmartcashctl) {
    Scratch s("pause-tier-resume");
    Daemon d(s, fixture("supervisor_base.yaml"), SMARTCASH_WORKER_PATH);
    ASSERT_TRUE(
        d.wait_for_event([](const Json& e) { return is_event(e, "checkpoint"); }, job_timeout))
        << d.stderr_text();
    std::string out;
    ASSERT_EQ(ctl(s, {"pause"}, &out), 0) << out;
    ASSERT_TRUE(d.wait_for_event([](const Json& e) { return is_event(e, "paused"); }, 60s))
        << d.stderr_text();
    ASSERT_EQ(ctl(s, {"status", "--json"}, &out), 0) << out;
    Json st = Json::parse(out, nullptr, false);
    EXPECT_EQ(st.value("state", ""), "paused") << out;
    EXPECT_EQ(st.value("pid", -1), 0) << "a paused job has no worker: " << out;
    const std::int64_t paused_at = st.value("last_checkpoint_step", std::int64_t{-1});
    EXPECT_GT(paused_at, 0) << out;

    EXPECT_EQ(ctl(s, {"tier", "no-such-tier"}, &out), 1);  // refused (the reason on stderr)
    ASSERT_EQ(ctl(s, {"tier", "small"}, &out), 0) << out;
    ASSERT_EQ(ctl(s, {"resume"}, &out), 0) << out;
    ASSERT_EQ(d.wait(job_timeout), 0) << d.stderr_text();

    const auto all = events(s);
    const auto moves = events_named(s, "tier-move");
    ASSERT_EQ(moves.size(), 1u) << dump(all);
    EXPECT_EQ(moves[0].value("to", ""), "small");
    EXPECT_EQ(moves[0].value("reason", ""), "requested");
    const auto hellos = events_named(s, "hello");
    ASSERT_EQ(hellos.size(), 2u) << dump(all);
    EXPECT_EQ(hellos[1].value("tier", ""), "small");
    EXPECT_EQ(step_of(hellos[1], "resumed_step"), paused_at);
    EXPECT_EQ(state_json(s).value("tier", ""), "small");
}

TEST(IntegrationStart, BadConfigAndCorruptStateJsonExitOneSayingWhere) {
    Scratch s("bad-start");
    const std::string bad =
        changed_fixture(s, "bad.yaml", "micro_batch: 2", "micro_batch: 3");  // tier small
    {
        Daemon d(s, bad, SMARTCASH_WORKER_PATH);
        EXPECT_EQ(d.wait(30s), 1);
        const std::string err = d.stderr_text();
        EXPECT_NE(err.find("bad.yaml:"), std::string::npos) << err;
        EXPECT_NE(err.find("micro_batch"), std::string::npos) << err;
        EXPECT_FALSE(fs::exists(run_dir::state(s.run())));
    }
    fs::create_directories(s.run());
    std::ofstream(run_dir::state(s.run())) << "{\"status\": \"running\", \"tier\": ";  // torn
    Daemon d(s, fixture("supervisor_base.yaml"), SMARTCASH_WORKER_PATH, "-2");
    EXPECT_EQ(d.wait(30s), 1);
    const std::string err = d.stderr_text();
    EXPECT_NE(err.find(run_dir::state(s.run())), std::string::npos) << err;
    EXPECT_TRUE(events_named(s, "launch").empty()) << "nothing may run on a state it cannot read";
}

TEST(IntegrationStart, AChangedConfigOnRestartWarnsAndTheFrozenOneStays) {
    Scratch s("changed-config");
    {
        Daemon d(s, fixture("supervisor_base.yaml"), SMARTCASH_WORKER_PATH);
        ASSERT_TRUE(d.wait_for_event([](const Json& e) { return is_event(e, "hello"); }, 60s))
            << d.stderr_text();
        ASSERT_EQ(::kill(d.pid(), SIGTERM), 0);
        ASSERT_EQ(d.wait(60s), 3) << d.stderr_text();
    }
    const std::string frozen = slurp(run_dir::config(s.run()));
    const std::string other =
        changed_fixture(s, "other.yaml", "retry_budget: 3", "retry_budget: 7");
    Daemon d(s, other, SMARTCASH_WORKER_PATH, "-2");
    ASSERT_EQ(d.wait(job_timeout), 0) << d.stderr_text();
    const std::string err = d.stderr_text();
    EXPECT_NE(err.find("differs"), std::string::npos) << err;
    EXPECT_EQ(slurp(run_dir::config(s.run())), frozen);
}

// min_available far above this machine's MemAvailable: the system itself is short of memory,
// whatever the worker uses. Each tier with a lower one to go to is left by a soft-limit stop
// (no step lost); the last one is noted and trains to the end.
TEST(IntegrationMemory, SystemShortOfMemoryMovesDownWithNoStepLost) {
    Scratch s("system-short");
    const std::string config =
        changed_fixture(s, "short.yaml", "min_available: 0", "min_available: 1000TiB");
    Daemon d(s, config, SMARTCASH_WORKER_PATH);
    ASSERT_EQ(d.wait(job_timeout), 0) << d.stderr_text();
    const auto all = events(s);
    const auto soft = events_named(s, "soft-limit");
    ASSERT_EQ(soft.size(), 1u) << dump(all);
    EXPECT_NE(soft[0].value("reason", "").find("system memory available"), std::string::npos)
        << soft[0].dump();
    EXPECT_EQ(events_named(s, "soft-limit-last-tier").size(), 1u) << dump(all);
    const auto moves = events_named(s, "tier-move");
    ASSERT_EQ(moves.size(), 1u) << dump(all);
    EXPECT_EQ(moves[0].value("reason", ""), "soft-limit");
    std::int64_t stop_step = -1;
    for (const auto& e : all)
        if (is_event(e, "checkpoint") && e.value("kind", "") == "stop") stop_step = step_of(e);
    const auto hellos = events_named(s, "hello");
    ASSERT_EQ(hellos.size(), 2u) << dump(all);
    EXPECT_GE(stop_step, 0) << dump(all);
    EXPECT_EQ(step_of(hellos[1], "resumed_step"), stop_step);
    EXPECT_EQ(state_json(s).value("status", ""), "done");
}

}  // namespace
}  // namespace smartcash::integration
