// Requested stops (SIGTERM, checkpoint_and_stop on the command fd), resumes across tiers and
// configs, and checkpoint-info, on the real smartcash-worker binary.
#include <random>
#include <regex>

#include "common/exit_codes.hpp"
#include "worker_process.hpp"

namespace {

using namespace worker_test;
namespace exit_code = smartcash::exit_code;

class WorkerStop : public WorkerTest {
  protected:
    /// Waits until metrics.jsonl holds at least `steps` step lines (or the worker ends).
    void wait_for_steps(WorkerProcess& w, int steps, const std::string& run) {
        while (w.running() && metric_step_lines(run) < steps) w.poll_reports(5);
    }
};

// SIGTERM in the middle of an epoch, no report channel (a terminal run): the worker finishes
// the current micro-batch, writes a "stop" checkpoint of exactly the completed steps and exits
// with requested_stop; a resume ends bit-identical.
TEST_F(WorkerStop, SigtermMidEpochCheckpointsCompletedStepsAndExits) {
    const Reference& ref = reference("big");
    const std::string run = run_dir();
    {
        auto w = train(run, "big", LaunchOptions{{}, {}, /*channel=*/false});
        wait_for_steps(*w, 3, run);
        ASSERT_TRUE(w->running()) << w->err();
        w->signal(SIGTERM);
        const auto status = w->wait(60);
        const std::string err = w->err();
        ASSERT_TRUE(status.exited) << status.describe() << "\n" << err;
        ASSERT_EQ(status.code, exit_code::requested_stop) << err;
        const int completed = metric_step_lines(run);
        EXPECT_GE(completed, 3);
        EXPECT_NE(completed % 8, 0) << "the stop should land mid-epoch (8 steps per epoch)";
        auto files = step_checkpoints(run);
        ASSERT_FALSE(files.empty());
        auto ci = info(files.rbegin()->second);
        EXPECT_EQ(ci.json.value("step", std::int64_t{-1}), completed) << ci.json.dump();
        EXPECT_EQ(ci.json.value("step_in_epoch", std::int64_t{-1}), completed % 8);
        EXPECT_EQ(ci.json.value("kind", std::string()), "stop");
        EXPECT_NE(err.find("stopping (SIGTERM)"), std::string::npos) << err;
    }
    auto w = train(run);
    const auto status = w->wait();
    ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << "\n"
                                                                 << w->err();
    expect_reference_weights(final_hash(run), ref);
}

// checkpoint_and_stop on the command fd gives the same stop; the report fd carries hello,
// progress, checkpoint and stopping lines with the documented fields.
TEST_F(WorkerStop, CheckpointAndStopCommandAndReportLines) {
    const std::string run = run_dir();
    auto w = train(run);
    auto first = w->wait_report("checkpoint", 120);
    ASSERT_TRUE(first) << w->err();
    w->send_command({{"cmd", "checkpoint_and_stop"}, {"reason", "memory pressure"}});
    const auto status = w->wait(60);
    const std::string err = w->err();
    ASSERT_TRUE(status.exited) << status.describe() << "\n" << err;
    ASSERT_EQ(status.code, exit_code::requested_stop) << err;
    const int completed = metric_step_lines(run);

    auto hello = w->reports_of("hello");
    ASSERT_EQ(hello.size(), 1u);
    EXPECT_EQ(hello[0].value("v", 0), 1);
    EXPECT_EQ(hello[0].value("pid", -1L), static_cast<long>(w->pid()));
    EXPECT_EQ(hello[0].value("tier", std::string()), "big");
    EXPECT_EQ(hello[0].value("device", std::string()), "cpu");
    EXPECT_EQ(hello[0].value("micro_batch", 0), 4);
    EXPECT_EQ(hello[0].value("resumed_step", -1), 0);
    EXPECT_EQ(hello[0].value("total_steps", 0), 24);

    auto progress = w->reports_of("progress");
    ASSERT_FALSE(progress.empty());
    for (const char* key : {"step", "total_steps", "epoch", "phase", "loss", "lr", "images_per_s",
                            "rss", "device_mem"})
        EXPECT_TRUE(progress.back().contains(key))
            << key << " missing in " << progress.back().dump();
    EXPECT_GT(progress.back().value("rss", 0.0), 0.0);

    auto checkpoints = w->reports_of("checkpoint");
    ASSERT_GE(checkpoints.size(), 2u);
    for (const auto& c : checkpoints)
        EXPECT_EQ(c.value("sha256", std::string()).size(), 64u) << c.dump();
    {
        const std::string path = checkpoints.back().value("path", std::string());
        const Json manifest = Json::parse(read_text(path.substr(0, path.size() - 3) + ".json"));
        EXPECT_EQ(checkpoints.back().value("sha256", std::string()),
                  manifest.value("sha256", std::string("?")));
    }
    EXPECT_EQ(checkpoints.back().value("kind", std::string()), "stop");
    EXPECT_EQ(checkpoints.back().value("step", -1), completed);

    auto stopping = w->reports_of("stopping");
    ASSERT_EQ(stopping.size(), 1u);
    EXPECT_EQ(stopping[0].value("reason", std::string()), "memory pressure");
    EXPECT_EQ(stopping[0].value("step", -1), completed);
    EXPECT_EQ(stopping[0].value("exit_code", -1), exit_code::requested_stop);
    EXPECT_EQ(stopping[0].value("checkpoint", std::string()),
              checkpoints.back().value("path", std::string()));
    auto ci = info(stopping[0].value("checkpoint", std::string()));
    EXPECT_EQ(ci.json.value("step", -1), completed);
    // The stop came within a step or two of the request.
    EXPECT_LE(completed, first->value("step", 0) + 2);
}

// The command pipe at end of file means the supervisor is gone (macOS has no parent-death
// signal): the worker checkpoints the completed steps and stops, as for checkpoint_and_stop.
TEST_F(WorkerStop, ClosedCommandPipeIsASupervisorGoneStop) {
    const std::string run = run_dir();
    auto w = train(run);
    ASSERT_TRUE(w->wait_report("checkpoint", 120)) << w->err();
    w->close_commands();
    const auto status = w->wait(60);
    const std::string err = w->err();
    ASSERT_TRUE(status.exited) << status.describe() << "\n" << err;
    ASSERT_EQ(status.code, exit_code::requested_stop) << err;
    EXPECT_NE(err.find("stopping (supervisor gone)"), std::string::npos) << err;
    auto stopping = w->reports_of("stopping");
    ASSERT_EQ(stopping.size(), 1u) << err;
    EXPECT_EQ(stopping[0].value("reason", std::string()), "supervisor gone");
    auto ci = info(stopping[0].value("checkpoint", std::string()));
    EXPECT_EQ(ci.json.value("step", -1), metric_step_lines(run));
    EXPECT_EQ(ci.json.value("kind", std::string()), "stop");
}

// SIGTERMs at random moments on a tier with two micro-batches per step: many land inside a step
// (between its micro-batches). The stop checkpoint then holds the parameters of the last
// completed step and the normalisation buffers snapshotted when the abandoned step began, so the
// run still ends bit-identical to an uninterrupted run on that tier.
TEST_F(WorkerStop, SigtermInsideAStepResumesBitIdentical) {
    const Reference& ref = reference("small");
    const std::string run = run_dir();
    std::mt19937_64 rng(7341);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const double training_s = std::max(0.5, ref.wall_s - ref.startup_s);
    int stops = 0, inside = 0;
    while ((inside < 2 || stops < 4) && stops < 14) {
        auto w = train(run, "small");
        auto hello = w->wait_report("hello", 120);
        ASSERT_TRUE(hello) << w->err();
        const auto resumed = hello->value("resumed_step", std::int64_t{0});
        const double remaining_s =
            training_s * (1.0 - static_cast<double>(resumed) / ref.total_steps);
        const auto until =
            Clock::now() + std::chrono::duration<double>(unit(rng) * remaining_s / 8);
        while (Clock::now() < until && w->running()) w->poll_reports(2);
        ASSERT_TRUE(w->running()) << "the run finished before enough stops landed";
        w->signal(SIGTERM);
        const auto status = w->wait(60);
        const std::string err = w->err();
        ASSERT_TRUE(status.exited && status.code == exit_code::requested_stop)
            << status.describe() << "\n"
            << err;
        ++stops;
        if (err.find("inside step") != std::string::npos) ++inside;
        auto stopping = w->reports_of("stopping");
        ASSERT_EQ(stopping.size(), 1u);
        auto ci = info(stopping[0].value("checkpoint", std::string()));
        EXPECT_EQ(ci.json.value("step", -1), stopping[0].value("step", -2));
        EXPECT_EQ(ci.json.value("kind", std::string()), "stop");
    }
    EXPECT_GE(inside, 2) << "too few stops landed inside a step";
    auto w = train(run, "small");
    const auto status = w->wait();
    ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << "\n"
                                                                 << w->err();
    expect_reference_weights(final_hash(run), ref);
    std::cout << "[ figures  ] " << stops << " SIGTERM stops, " << inside << " inside a step\n";
}

// A resume with a changed model key or effective batch is refused (config_error, the key named);
// a changed tier (micro-batch 2 instead of 4) continues from the checkpoint's step.
TEST_F(WorkerStop, ResumeRefusesChangedModelOrBatchButAcceptsAnotherTier) {
    const std::string run = run_dir();
    std::int64_t stopped_at = -1;
    {
        auto w = train(run);
        ASSERT_TRUE(w->wait_report("checkpoint", 120)) << w->err();
        w->signal(SIGTERM);
        const auto status = w->wait(60);
        ASSERT_TRUE(status.exited && status.code == exit_code::requested_stop)
            << status.describe() << "\n"
            << w->err();
        stopped_at = w->reports_of("stopping").at(0).value("step", std::int64_t{-1});
        ASSERT_GT(stopped_at, 0);
    }
    const std::vector<std::pair<std::string, std::string>> refused = {
        {changed_config("wide.yaml", "width_multiple: 0.1", "width_multiple: 0.125"),
         "model.width_multiple"},
        {changed_config("batch.yaml", "effective_batch: 4", "effective_batch: 8"),
         "training.effective_batch"},
    };
    for (const auto& [config, key] : refused) {
        auto w = train(run, "big", {}, config);
        const auto status = w->wait();
        const std::string err = w->err();
        ASSERT_TRUE(status.exited) << status.describe() << "\n" << err;
        EXPECT_EQ(status.code, exit_code::config_error) << err;
        EXPECT_NE(err.find(key), std::string::npos) << err;
        EXPECT_NE(err.find("cannot resume"), std::string::npos) << err;
        auto errors = w->reports_of("error");
        ASSERT_EQ(errors.size(), 1u);
        EXPECT_EQ(errors[0].value("kind", std::string()), "config");
        EXPECT_NE(errors[0].value("message", std::string()).find(key), std::string::npos);
    }
    // The refused launches changed nothing: the newest checkpoint is still the stop checkpoint.
    EXPECT_EQ(step_checkpoints(run).rbegin()->first, stopped_at);

    auto w = train(run, "small");
    const auto status = w->wait();
    ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << "\n"
                                                                 << w->err();
    auto hello = w->reports_of("hello").at(0);
    EXPECT_EQ(hello.value("resumed_step", std::int64_t{-1}), stopped_at);
    EXPECT_EQ(hello.value("micro_batch", 0), 2);
    auto ci = info(step_checkpoints(run).rbegin()->second);
    EXPECT_EQ(ci.json.value("tier", std::string()), "small");
    EXPECT_EQ(ci.json.value("step", 0), 24);
    const Json tiers = ci.json.value("tiers", Json::array());
    ASSERT_EQ(tiers.size(), 2u) << tiers.dump();
    EXPECT_EQ(tiers[0].value("tier", std::string()), "big");
    EXPECT_EQ(tiers[1].value("tier", std::string()), "small");
    EXPECT_EQ(tiers[1].value("from_step", std::int64_t{-1}), stopped_at);
}

// checkpoint-info --json on good checkpoints, and on files that are not checkpoints.
TEST_F(WorkerStop, CheckpointInfoJsonFields) {
    const std::string run = run_dir();
    {
        auto w = train(run);
        const auto status = w->wait();
        ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << "\n"
                                                                     << w->err();
    }
    auto files = step_checkpoints(run);
    ASSERT_EQ(files.size(), 3u);
    const std::regex hex64("[0-9a-f]{64}");
    for (const auto& [file_step, path] : files) {
        auto ci = info(path);
        EXPECT_EQ(ci.code, 0);
        const Json& j = ci.json;
        EXPECT_TRUE(j.value("valid", false)) << j.dump();
        EXPECT_EQ(j.value("format_version", 0), 1);
        EXPECT_EQ(j.value("step", std::int64_t{-1}), file_step);
        EXPECT_EQ(j.value("tier", std::string()), "big");
        EXPECT_EQ(j.value("phase", 0), 2);  // steps 20-24 are in phase 2 (epochs 2-3)
        EXPECT_TRUE(std::regex_match(j.value("weights_sha256", std::string()), hex64)) << j.dump();
        if (file_step == 24) {
            EXPECT_EQ(j.value("epoch", -1), 3);  // the epoch checkpoint names the epoch to come
            EXPECT_EQ(j.value("kind", std::string()), "epoch");
            EXPECT_TRUE(j.value("finished", false));
        } else {
            EXPECT_EQ(j.value("epoch", -1), 2);
            EXPECT_EQ(j.value("kind", std::string()), "step");
        }
    }
    // Different steps, different weights; the hash covers weights, not the file bytes.
    EXPECT_NE(info(files.begin()->second).json.value("weights_sha256", std::string()),
              info(files.rbegin()->second).json.value("weights_sha256", std::string()));
    auto best = info(run + "/checkpoints/best.pt");
    EXPECT_TRUE(best.json.value("valid", false)) << best.json.dump();

    // Not a checkpoint: invalid with a reason, non-zero exit.
    const std::string junk = dir() + "/junk.pt";
    write_text(junk, "this is not a checkpoint");
    auto bad = info(junk);
    EXPECT_NE(bad.code, 0);
    EXPECT_FALSE(bad.json.value("valid", true));
    EXPECT_FALSE(bad.json.value("reason", std::string()).empty());
    auto missing = info(dir() + "/missing.pt");
    EXPECT_NE(missing.code, 0);
    EXPECT_FALSE(missing.json.value("valid", true));
}

}  // namespace

namespace {

// The worker holds RUN_DIR/worker.lock for its life: a second worker on the same run directory
// refuses with the first one's pid, and the lock is free again once the first has ended.
TEST_F(WorkerStop, ASecondWorkerOnTheSameRunDirectoryRefuses) {
    const std::string run = run_dir();
    // Slow checkpoints keep the first worker alive while the second one starts.
    auto first =
        train(run, "big", LaunchOptions{{"SMARTCASH_TEST_SLOW_CHECKPOINT_MS=3000"}, {}, false});
    wait_for_steps(*first, 1, run);
    ASSERT_TRUE(first->running()) << first->err();
    auto second = train(run, "big", LaunchOptions{{}, {}, /*channel=*/false});
    const auto refused = second->wait(60);
    ASSERT_TRUE(refused.exited) << refused.describe();
    EXPECT_EQ(refused.code, exit_code::config_error) << second->err();
    EXPECT_NE(second->err().find("another worker is training in " + run + " (pid " +
                                 std::to_string(first->pid()) + ")"),
              std::string::npos)
        << second->err();
    EXPECT_TRUE(first->running()) << "the refused worker must not disturb the first";
    first->signal(SIGKILL);
    first->wait(30);
    // The kernel drops a flock with its last holder, even after SIGKILL.
    auto third = train(run, "big", LaunchOptions{{}, {}, /*channel=*/false});
    wait_for_steps(*third, metric_step_lines(run) + 1, run);
    EXPECT_TRUE(third->running()) << third->err();
}

}  // namespace
