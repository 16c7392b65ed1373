// The worker's fault contract, each fault caused for real on the smartcash-worker binary:
// SIGKILL at random moments and during a checkpoint write, damaged checkpoints, an address-space
// limit (in-process OOM) and a file-size limit (full disk) — and that every resume ends with
// weights bit-identical to an uninterrupted run.
#include <random>

#include "common/exit_codes.hpp"
#include "worker_process.hpp"

namespace {

using namespace worker_test;
namespace exit_code = smartcash::exit_code;

/// Reads reports for `seconds` or until the worker ends.
void pump(WorkerProcess& w, double seconds) {
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < until && w.running()) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
        w.poll_reports(static_cast<int>(std::clamp<long long>(left, 0, 5)));
    }
}

std::string rejected_line(const std::string& err, const std::string& path) {
    const auto at = err.find("checkpoint rejected: " + path);
    if (at == std::string::npos) return {};
    return err.substr(at, err.find('\n', at) - at);
}

void truncate_to_half(const std::string& path) {
    const auto size = fs::file_size(path);
    fs::resize_file(path, size / 2);
}

void flip_bit(const std::string& path, std::uintmax_t offset) {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x10);
    f.seekp(static_cast<std::streamoff>(offset));
    f.write(&c, 1);
}

class WorkerFaults : public WorkerTest {};

// The headline: 20 SIGKILLs at seeded random moments of one run (during start-up,
// training steps, evaluation and checkpoint writes alike), resumed each time with the same
// command, end with the uninterrupted run's weights.
TEST_F(WorkerFaults, TwentySigkillsAtRandomMomentsEndBitIdentical) {
    const Reference& ref = reference("big");
    ASSERT_EQ(ref.final_step, ref.total_steps);
    const std::string run = run_dir();
    std::mt19937_64 rng(0x5eed2024);
    std::uniform_real_distribution<double> unit(0.0, 1.0);
    const double training_s = std::max(0.5, ref.wall_s - ref.startup_s);
    constexpr int kills_wanted = 20;
    int landed = 0, launches = 0, before_hello = 0;
    std::vector<std::int64_t> resumed;
    while (landed < kills_wanted && launches < 3 * kills_wanted) {
        ++launches;
        auto w = train(run);
        if (unit(rng) < 0.2) {
            // Some kills land while the worker is still starting (loading, building the model).
            pump(*w, unit(rng) * ref.startup_s);
            ++before_hello;
        } else {
            auto hello = w->wait_report("hello", 120);
            ASSERT_TRUE(hello) << w->err();
            const auto step = hello->value("resumed_step", std::int64_t{0});
            resumed.push_back(step);
            // Spread the remaining kills over the remaining training time, so that the run
            // advances but does not finish before the last kill.
            const double remaining_s =
                training_s * (1.0 - static_cast<double>(step) / ref.total_steps);
            pump(*w, unit(rng) * 2.0 * remaining_s / (kills_wanted - landed + 1));
        }
        if (w->running()) w->signal(SIGKILL);
        const auto status = w->wait();
        if (status.killed_by(SIGKILL)) {
            ++landed;
            continue;
        }
        ASSERT_TRUE(status.exited && status.code == exit_code::done)
            << "launch " << launches << " ended with " << status.describe() << ":\n"
            << w->err();
        break;  // finished before the kill: no more kills can land
    }
    ASSERT_EQ(landed, kills_wanted) << "the run finished after " << landed << " kills";
    ASSERT_FALSE(resumed.empty());
    EXPECT_GT(*std::max_element(resumed.begin(), resumed.end()), 0) << "no launch made progress";

    auto last = train(run);
    const auto status = last->wait();
    ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << "\n"
                                                                 << last->err();
    expect_reference_weights(final_hash(run), ref);
    std::string steps;
    for (auto s : resumed) steps += std::to_string(s) + " ";
    std::cout << "[ figures  ] " << landed << " kills landed in " << launches << " launches ("
              << before_hello << " before hello); resumed steps: " << steps << "\n";
}

// A kill while a checkpoint is being written: (a) while the .pt or manifest temp file exists,
// (b) after the .pt is in place but before its manifest (made slow with a test hook). The
// interrupted write is cleaned up or rejected, the previous good checkpoint is used, and the
// run still ends bit-identical.
TEST_F(WorkerFaults, SigkillDuringCheckpointWriteResumesFromPreviousGood) {
    const Reference& ref = reference("big");
    const std::string run = run_dir();

    // (a) Kill the moment a temp file appears in the checkpoint directory.
    std::string interrupted;
    int tries = 0;
    for (; tries < 10 && interrupted.empty(); ++tries) {
        auto w = train(run);
        while (w->running()) {
            auto temps = temp_files(run);
            if (!temps.empty()) {
                w->signal(SIGKILL);
                break;
            }
            w->poll_reports(0);
            std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        const auto status = w->wait();
        ASSERT_FALSE(status.exited) << "the run finished without a kill landing mid-write:\n"
                                    << w->err();
        auto left = temp_files(run);
        if (!left.empty()) interrupted = left.front();
    }
    ASSERT_FALSE(interrupted.empty()) << "no kill landed during a write in " << tries << " tries";
    {
        auto w = train(run);
        ASSERT_TRUE(w->wait_report("hello", 120)) << w->err();
        EXPECT_FALSE(fs::exists(run + "/checkpoints/" + interrupted));
        // One good checkpoint of this launch, so that (b) has a previous one to fall back to.
        ASSERT_TRUE(w->wait_report("checkpoint", 120)) << w->err();
        w->signal(SIGKILL);
        w->wait();
        EXPECT_NE(
            w->err().find("removed " + interrupted + ", left by an interrupted checkpoint write"),
            std::string::npos)
            << w->err();
    }

    // (b) The .pt is renamed into place; its manifest is not yet written.
    std::string orphan;
    std::int64_t orphan_step = -1;
    {
        auto w =
            train(run, "big", LaunchOptions{{"SMARTCASH_TEST_SLOW_CHECKPOINT_MS=5000"}, {}, true});
        const auto before = step_checkpoints(run);
        const std::int64_t newest_before = before.empty() ? -1 : before.rbegin()->first;
        while (w->running() && orphan.empty()) {
            auto files = step_checkpoints(run);
            if (!files.empty() && files.rbegin()->first > newest_before) {
                const std::string pt = files.rbegin()->second;
                if (!fs::exists(pt.substr(0, pt.size() - 3) + ".json")) {
                    w->signal(SIGKILL);
                    orphan = pt;
                    orphan_step = files.rbegin()->first;
                }
            }
            w->poll_reports(1);
        }
        const auto status = w->wait();
        ASSERT_TRUE(status.killed_by(SIGKILL)) << status.describe() << "\n" << w->err();
        ASSERT_FALSE(orphan.empty());
    }
    {
        auto w = train(run);
        const auto status = w->wait();
        ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << "\n"
                                                                     << w->err();
        const std::string err = w->err();
        EXPECT_NE(rejected_line(err, orphan).find("no manifest"), std::string::npos) << err;
        auto hello = w->reports_of("hello");
        ASSERT_EQ(hello.size(), 1u);
        EXPECT_LT(hello[0].value("resumed_step", std::int64_t{-1}), orphan_step);
        EXPECT_GT(hello[0].value("resumed_step", std::int64_t{-1}), 0);
    }
    expect_reference_weights(final_hash(run), ref);
    std::cout << "[ figures  ] temp-file kill landed after " << tries << " launch(es) ("
              << interrupted << "); orphan .pt at step " << orphan_step << "\n";
}

// A truncated, then a bit-flipped newest checkpoint: checkpoint-info calls them invalid and says
// why; a resume names the rejected file and the reason, uses the previous good one, and still
// ends bit-identical.
TEST_F(WorkerFaults, TruncatedAndBitFlippedCheckpointsFallBackToPreviousGood) {
    const Reference& ref = reference("big");
    const std::string run = run_dir();
    auto finish = [&](const char* what) {
        auto w = train(run);
        const auto status = w->wait();
        EXPECT_TRUE(status.exited && status.code == exit_code::done)
            << what << ": " << status.describe() << "\n"
            << w->err();
        auto hello = w->reports_of("hello");
        EXPECT_EQ(hello.size(), 1u);
        return std::make_pair(
            w->err(), hello.empty() ? -1 : hello[0].value("resumed_step", std::int64_t{-1}));
    };
    finish("first run");
    auto files = step_checkpoints(run);
    ASSERT_EQ(files.size(), 3u);  // keep_checkpoints: 3
    const auto newest = files.rbegin()->second;
    const auto second = std::next(files.rbegin())->second;
    const auto third = std::next(files.rbegin(), 2)->second;
    const auto second_step = std::next(files.rbegin())->first;
    const auto third_step = std::next(files.rbegin(), 2)->first;

    // Truncated.
    truncate_to_half(newest);
    auto ci = info(newest);
    EXPECT_NE(ci.code, 0);
    EXPECT_FALSE(ci.json.value("valid", true));
    EXPECT_NE(ci.json.value("reason", std::string()).find("truncated"), std::string::npos)
        << ci.json.dump();
    {
        auto [err, resumed_step] = finish("after truncation");
        EXPECT_NE(rejected_line(err, newest).find("truncated"), std::string::npos) << err;
        EXPECT_NE(err.find("resumed from " + second), std::string::npos) << err;
        EXPECT_EQ(resumed_step, second_step);
    }
    expect_reference_weights(final_hash(run), ref);

    // Bit-flipped newest (same size, so only the checksum can tell) and truncated second newest:
    // the third one is used.
    flip_bit(newest, fs::file_size(newest) / 2);
    truncate_to_half(second);
    ci = info(newest);
    EXPECT_NE(ci.code, 0);
    EXPECT_FALSE(ci.json.value("valid", true));
    EXPECT_NE(ci.json.value("reason", std::string()).find("checksum mismatch"), std::string::npos)
        << ci.json.dump();
    {
        auto [err, resumed_step] = finish("after the bit flip");
        EXPECT_NE(rejected_line(err, newest).find("checksum mismatch"), std::string::npos) << err;
        EXPECT_NE(rejected_line(err, second).find("truncated"), std::string::npos) << err;
        EXPECT_NE(err.find("resumed from " + third), std::string::npos) << err;
        EXPECT_EQ(resumed_step, third_step);
    }
    expect_reference_weights(final_hash(run), ref);
}

// RLIMIT_AS capped at what is mapped when step 13 begins: the next allocations fail in-process.
// The worker exits with the oom code after an emergency checkpoint of the last completed step,
// and a resume without the limit ends bit-identical.
TEST_F(WorkerFaults, AddressSpaceLimitGivesOomExitAndEmergencyCheckpoint) {
#if !defined(__linux__)
    GTEST_SKIP() << "RLIMIT_AS is enforced on Linux only (macOS accepts it and ignores it)";
#endif
    const Reference& ref = reference("big");
    const std::string run = run_dir();
    constexpr int limit_at_step = 13;
    std::int64_t oom_step = -1;
    {
        auto w = train(
            run, "big",
            LaunchOptions{
                {"SMARTCASH_TEST_RLIMIT_AS_AT_STEP=" + std::to_string(limit_at_step)}, {}, true});
        const auto status = w->wait();
        const std::string err = w->err();
        ASSERT_TRUE(status.exited) << status.describe() << "\n" << err;
        ASSERT_EQ(status.code, exit_code::oom) << err;
        auto ooms = w->reports_of("oom");
        ASSERT_EQ(ooms.size(), 1u) << err;
        oom_step = ooms[0].value("step", std::int64_t{-1});
        const std::string path = ooms[0].value("checkpoint", std::string());
        EXPECT_GE(oom_step, limit_at_step);
        // Every completed step is in metrics.jsonl (one launch, so one line per step).
        EXPECT_EQ(oom_step, metric_step_lines(run));
        ASSERT_FALSE(path.empty()) << err;
        auto ci = info(path);
        EXPECT_EQ(ci.code, 0) << ci.json.dump();
        EXPECT_EQ(ci.json.value("step", std::int64_t{-2}), oom_step);
        EXPECT_NE(err.find("out of memory"), std::string::npos) << err;
        std::cout << "[ figures  ] oom at step " << oom_step << " ("
                  << ooms[0].value("message", std::string()) << "), checkpoint kind "
                  << ci.json.value("kind", std::string()) << "\n";
    }
    auto w = train(run);
    const auto status = w->wait();
    ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << "\n"
                                                                 << w->err();
    EXPECT_EQ(w->reports_of("hello").at(0).value("resumed_step", std::int64_t{-1}), oom_step);
    expect_reference_weights(final_hash(run), ref);
}

// An allocation failure while the normalisation buffers are copied at the start of step 6 (made
// for real: the test hook asks the allocator for an impossible tensor half-way through the copy).
// The half-made copy is not used: the worker writes an emergency checkpoint of step 5, the last
// completed one (the last step checkpoint was step 4), exits with the oom code, and a resume
// ends bit-identical.
TEST_F(WorkerFaults, OomWhileSnapshottingBuffersStillWritesTheEmergencyCheckpoint) {
    const Reference& ref = reference("big");
    const std::string run = run_dir();
    constexpr std::int64_t oom_at_step = 5;
    {
        auto w = train(
            run, "big",
            LaunchOptions{
                {"SMARTCASH_TEST_SNAPSHOT_OOM_AT_STEP=" + std::to_string(oom_at_step)}, {}, true});
        const auto status = w->wait();
        const std::string err = w->err();
        ASSERT_TRUE(status.exited) << status.describe() << "\n" << err;
        ASSERT_EQ(status.code, exit_code::oom) << err;
        auto ooms = w->reports_of("oom");
        ASSERT_EQ(ooms.size(), 1u) << err;
        EXPECT_NE(ooms[0].value("message", std::string()).find("allocate"), std::string::npos)
            << ooms[0].dump();
        EXPECT_EQ(ooms[0].value("step", std::int64_t{-1}), oom_at_step);
        EXPECT_EQ(metric_step_lines(run), oom_at_step);
        const std::string path = ooms[0].value("checkpoint", std::string());
        ASSERT_FALSE(path.empty()) << err;
        auto ci = info(path);
        EXPECT_EQ(ci.code, 0) << ci.json.dump();
        EXPECT_TRUE(ci.json.value("valid", false)) << ci.json.dump();
        EXPECT_EQ(ci.json.value("step", std::int64_t{-1}), oom_at_step);
        EXPECT_EQ(ci.json.value("kind", std::string()), "emergency");
        EXPECT_EQ(err.find("emergency checkpoint failed"), std::string::npos) << err;
    }
    auto w = train(run);
    const auto status = w->wait();
    ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << "\n"
                                                                 << w->err();
    EXPECT_EQ(w->reports_of("hello").at(0).value("resumed_step", std::int64_t{-1}), oom_at_step);
    expect_reference_weights(final_hash(run), ref);
}

// keep_checkpoints: 1 and a damaged newest checkpoint (truncated on disk). The resume rejects it
// and starts over; the checkpoint it then writes is the newest good one and is kept, although the
// damaged file has a higher step. A second resume continues from it and ends bit-identical.
TEST_F(WorkerFaults, PruningKeepsTheNewestGoodCheckpointBesideADamagedOne) {
    const Reference& ref = reference("big");
    const std::string run = run_dir();
    const std::string config =
        changed_config("keep1.yaml", "keep_checkpoints: 3", "keep_checkpoints: 1");
    auto stop_after_checkpoint = [&](WorkerProcess& w, std::int64_t min_step) {
        auto reached = [&] {
            for (const auto& c : w.reports_of("checkpoint"))
                if (c.value("step", std::int64_t{-1}) >= min_step) return true;
            return false;
        };
        while (w.running() && !reached()) w.poll_reports(5);
        w.send_command({{"cmd", "checkpoint_and_stop"}, {"reason", "test"}});
        const auto status = w.wait(120);
        EXPECT_TRUE(status.exited && status.code == exit_code::requested_stop)
            << status.describe() << "\n"
            << w.err();
        return w.reports_of("stopping").empty()
                   ? std::int64_t{-1}
                   : w.reports_of("stopping")[0].value("step", std::int64_t{-1});
    };
    std::string damaged;
    std::int64_t damaged_step = -1;
    {
        auto w = train(run, "big", {}, config);
        ASSERT_GE(stop_after_checkpoint(*w, 6), 6);
        auto files = step_checkpoints(run);
        ASSERT_EQ(files.size(), 1u);
        damaged = files.begin()->second;
        damaged_step = files.begin()->first;
        truncate_to_half(damaged);
    }
    std::int64_t stopped_at = -1;
    {
        auto w = train(run, "big", {}, config);
        stopped_at = stop_after_checkpoint(*w, 1);
        EXPECT_NE(rejected_line(w->err(), damaged).find("truncated"), std::string::npos)
            << w->err();
        EXPECT_EQ(w->reports_of("hello").at(0).value("resumed_step", std::int64_t{-1}), 0);
    }
    ASSERT_GT(stopped_at, 0);
    ASSERT_LT(stopped_at, damaged_step);
    auto files = step_checkpoints(run);
    ASSERT_EQ(files.count(stopped_at), 1u) << "the newest good checkpoint was pruned";
    auto ci = info(files.at(stopped_at));
    EXPECT_TRUE(ci.json.value("valid", false)) << ci.json.dump();

    auto w = train(run, "big", {}, config);
    const auto status = w->wait();
    ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << "\n"
                                                                 << w->err();
    EXPECT_EQ(w->reports_of("hello").at(0).value("resumed_step", std::int64_t{-1}), stopped_at);
    expect_reference_weights(final_hash(run), ref);
}

// RLIMIT_FSIZE between the size of a phase-1 checkpoint and a phase-2 one (phase 2 adds the
// backbone's optimizer state): the first phase-2 save fails with EFBIG. The worker exits with the
// I/O code, the previous checkpoint still verifies, and no temp file is left.
TEST_F(WorkerFaults, FileSizeLimitGivesIoErrorAndKeepsPreviousCheckpoint) {
    const Reference& ref = reference("big");
    ASSERT_TRUE(ref.checkpoint_sizes.count(2) && ref.checkpoint_sizes.count(ref.final_step));
    const auto small = ref.checkpoint_sizes.at(2), large = ref.checkpoint_sizes.at(ref.final_step);
    ASSERT_GT(large, small + 4096) << "phase 2 checkpoints should be larger than phase 1 ones";
    const std::string run = run_dir();
    {
        auto w =
            train(run, "big", LaunchOptions{{}, static_cast<rlim_t>((small + large) / 2), true});
        const auto status = w->wait();
        const std::string err = w->err();
        ASSERT_TRUE(status.exited) << status.describe() << "\n" << err;
        ASSERT_EQ(status.code, exit_code::io_error) << err;
        EXPECT_NE(err.find("File too large"), std::string::npos) << err;
        auto errors = w->reports_of("error");
        ASSERT_EQ(errors.size(), 1u);
        EXPECT_EQ(errors[0].value("kind", std::string()), "io");
    }
    EXPECT_TRUE(temp_files(run).empty());
    auto files = step_checkpoints(run);
    ASSERT_FALSE(files.empty());
    auto ci = info(files.rbegin()->second);
    EXPECT_EQ(ci.code, 0) << ci.json.dump();
    EXPECT_TRUE(ci.json.value("valid", false));
    const auto kept_step = ci.json.value("step", std::int64_t{-1});
    EXPECT_GT(kept_step, 0);
    EXPECT_LT(kept_step, ref.final_step);
    const Json latest = Json::parse(read_text(run + "/checkpoints/latest.json"));
    EXPECT_EQ(latest.value("step", std::int64_t{-1}), kept_step);

    auto w = train(run);
    const auto status = w->wait();
    ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << "\n"
                                                                 << w->err();
    expect_reference_weights(final_hash(run), ref);
    std::cout << "[ figures  ] file size limit " << (small + large) / 2 << " bytes; kept step "
              << kept_step << "\n";
}

}  // namespace
