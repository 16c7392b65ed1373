// `smartcashctl checkpoint` with the real worker: the supervisor passes the command on and the
// worker writes a checkpoint after its current step, between the periodic ones. The periodic
// interval here is far beyond the steps the test runs, so a checkpoint of kind "step" can only
// come from the command (the epoch-end ones are of kind "epoch").
#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "common/run_dir.hpp"
#include "tests/integration/harness.hpp"

namespace smartcash::integration {
namespace {

constexpr std::int64_t kEvery = 100000;  // checkpoint_every_steps

bool is_step_checkpoint(const Json& e) {
    return e.value("event", "") == "checkpoint" && e.value("kind", "") == "step";
}

// The base fixture with periodic checkpoints kEvery steps apart and a long phase 2, so the job is
// still training when the test is done.
std::string sparse_checkpoints(const Scratch& s) {
    std::string text = slurp(fixture("supervisor_base.yaml"));
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{"checkpoint_every_steps: 2",
                                              "checkpoint_every_steps: " + std::to_string(kEvery)},
          {"phase2: {epochs: 3,", "phase2: {epochs: 300,"}}) {
        const auto at = text.find(from);
        EXPECT_NE(at, std::string::npos) << from;
        if (at != std::string::npos) text.replace(at, from.size(), to);
    }
    const std::string path = s.file("sparse-checkpoints.yaml");
    std::ofstream(path) << text;
    return path;
}

std::int64_t status_step(const Scratch& s) {
    std::string out;
    if (run_program({SMARTCASHCTL_PATH, "--run-dir", s.run(), "status", "--json"}, &out) != 0)
        return -1;
    return Json::parse(out, nullptr, false).value("step", std::int64_t{-1});
}

TEST(IntegrationCheckpointCommand, WritesACheckpointBetweenThePeriodicOnesAtOnce) {
    Scratch s("checkpoint-command");
    Daemon d(s, sparse_checkpoints(s), SMARTCASH_WORKER_PATH);
    ASSERT_TRUE(d.wait_for_event([](const Json& e) { return e.value("event", "") == "hello"; },
                                 job_timeout))
        << d.stderr_text();
    // Training is under way.
    std::int64_t before = -1;
    for (auto until = std::chrono::steady_clock::now() + 60s;
         before < 2 && std::chrono::steady_clock::now() < until; std::this_thread::sleep_for(100ms))
        before = status_step(s);
    ASSERT_GE(before, 2) << d.stderr_text();
    for (const auto& e : events(s)) ASSERT_FALSE(is_step_checkpoint(e)) << dump(events(s));

    const auto asked = std::chrono::steady_clock::now();
    std::string out;
    ASSERT_EQ(run_program({SMARTCASHCTL_PATH, "--run-dir", s.run(), "checkpoint"}, &out), 0) << out;
    Json written;
    ASSERT_TRUE(d.wait_for_event(
        [&](const Json& e) {
            if (is_step_checkpoint(e)) written = e;
            return is_step_checkpoint(e);
        },
        30s))
        << "no checkpoint within 30 s of the command\n"
        << dump(events(s)) << d.stderr_text();
    const auto took = std::chrono::steady_clock::now() - asked;
    const std::int64_t step = step_of(written);
    // After the step the worker was in (the status step lags it by up to a second's steps), and
    // not one the periodic rule would have written.
    EXPECT_GE(step, before);
    EXPECT_NE(step % kEvery, 0) << step;
    EXPECT_LT(took, 20s);
    // The file is there and is the step the event names.
    EXPECT_EQ(checkpoint_info(s.kept(written.value("path", ""))).value("step", std::int64_t{-1}),
              step);

    // One command, one checkpoint: ten more steps bring no other checkpoint of kind "step".
    const std::int64_t after = status_step(s);
    for (auto until = std::chrono::steady_clock::now() + 60s;
         status_step(s) < after + 10 && std::chrono::steady_clock::now() < until;
         std::this_thread::sleep_for(100ms)) {
    }
    EXPECT_GE(status_step(s), after + 10);
    std::size_t step_checkpoints = 0;
    for (const auto& e : events(s)) step_checkpoints += is_step_checkpoint(e) ? 1 : 0;
    EXPECT_EQ(step_checkpoints, 1u) << dump(events_named(s, "checkpoint"));

    ASSERT_EQ(run_program({SMARTCASHCTL_PATH, "--run-dir", s.run(), "stop"}, &out), 0) << out;
    EXPECT_EQ(d.wait(60s), 3) << d.stderr_text();
}

}  // namespace
}  // namespace smartcash::integration
