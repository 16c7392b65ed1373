// Data-parallel training on the real smartcash-worker binary: two ranks over loopback
// (WORLD_SIZE=2, RANK, MASTER_ADDR=127.0.0.1, a free MASTER_PORT), each with its own run
// directory, against one process with the same effective batch; a stop on one rank; the refusal
// of a resume with another world size; the config errors of a world size that cannot work.
#include <cmath>

#include "common/exit_codes.hpp"
#include "worker/checkpoint/checkpoint.hpp"
#include "worker/distributed/process_group.hpp"
#include "worker_process.hpp"

namespace {

using namespace worker_test;
namespace exit_code = smartcash::exit_code;

std::string dist_config() { return fixture("tiny_dist.yaml"); }

class WorkerDistributed : public WorkerTest {
  protected:
    void SetUp() override {
        WorkerTest::SetUp();
        if (!smartcash::dist::c10d_available())
            GTEST_SKIP() << "this build has no c10d/Gloo (data-parallel training)";
    }

    /// One rank of a two-rank job training into `run_dir`.
    std::unique_ptr<WorkerProcess> rank(int r, int port, const std::string& run_dir,
                                        const std::string& tier = "small", int world = 2,
                                        const std::vector<std::string>& extra_env = {}) {
        LaunchOptions options;
        options.env = {"WORLD_SIZE=" + std::to_string(world), "RANK=" + std::to_string(r),
                       "MASTER_ADDR=127.0.0.1", "MASTER_PORT=" + std::to_string(port),
                       "SMARTCASH_DIST_TIMEOUT=60"};
        options.env.insert(options.env.end(), extra_env.begin(), extra_env.end());
        return train(run_dir, tier, options, dist_config());
    }

    /// Runs both ranks to their end; returns their exit statuses.
    std::vector<ExitStatus> run_ranks(const std::vector<std::string>& runs,
                                      const std::string& tier = "small") {
        const int port = free_port();
        std::vector<std::unique_ptr<WorkerProcess>> ranks;
        for (int r = 0; r < static_cast<int>(runs.size()); ++r)
            ranks.push_back(rank(r, port, runs[static_cast<std::size_t>(r)], tier,
                                 static_cast<int>(runs.size())));
        std::vector<ExitStatus> out;
        for (auto& w : ranks) out.push_back(w->wait(240));
        for (std::size_t r = 0; r < ranks.size(); ++r)
            EXPECT_TRUE(out[r].exited && out[r].code == exit_code::done)
                << "rank " << r << ": " << out[r].describe() << "\n"
                << ranks[r]->err();
        return out;
    }

    /// Starts both ranks again on their run directories and runs them to the end: both finish,
    /// and both resume at `agreed`. Returns rank 0's stderr.
    std::string resume_both_to_the_end(const std::string& run0, const std::string& run1,
                                       std::int64_t agreed) {
        const int port = free_port();
        auto w0 = rank(0, port, run0);
        auto w1 = rank(1, port, run1);
        const auto s0 = w0->wait(240), s1 = w1->wait(240);
        EXPECT_TRUE(s0.exited && s0.code == exit_code::done) << s0.describe() << "\n" << w0->err();
        EXPECT_TRUE(s1.exited && s1.code == exit_code::done) << s1.describe() << "\n" << w1->err();
        for (auto* w : {w0.get(), w1.get()}) {
            const auto hello = w->reports_of("hello");
            EXPECT_EQ(hello.size(), 1u) << w->err();
            if (!hello.empty()) {
                EXPECT_EQ(hello[0].value("resumed_step", std::int64_t{-1}), agreed) << w->err();
            }
        }
        return w0->err();
    }

    /// The newest step checkpoint of a run, read back.
    smartcash::train::LoadedCheckpoint newest(const std::string& run_dir) {
        auto files = step_checkpoints(run_dir);
        if (files.empty()) throw std::runtime_error(run_dir + " has no checkpoint");
        return smartcash::train::read_checkpoint(files.rbegin()->second, true);
    }
};

/// Largest |a - b| over the parameters (not the buffers) of two checkpoints.
double max_parameter_difference(const smartcash::train::LoadedCheckpoint& a,
                                const smartcash::train::LoadedCheckpoint& b, std::size_t* count) {
    EXPECT_EQ(a.model.size(), b.model.size());
    double worst = 0;
    *count = 0;
    for (std::size_t k = 0; k < a.model.size() && k < b.model.size(); ++k) {
        const auto& [name, ta] = a.model[k];
        EXPECT_EQ(name, b.model[k].first);
        if (name.rfind("param:", 0) != 0) continue;
        ++*count;
        worst = std::max(worst, (ta - b.model[k].second).abs().max().item<double>());
    }
    return worst;
}

// Two ranks with micro-batch 2 and one process with two micro-batches of 2 train the same 16
// steps (effective batch 4, phase 2 with stochastic depth in the backbone): the final parameters
// agree within float tolerance, and the two ranks end with identical weights and statistics.
TEST_F(WorkerDistributed, TwoRanksTrainLikeOneProcess) {
    const std::string rank0 = run_dir("rank0"), rank1 = run_dir("rank1"), one = run_dir("one");
    run_ranks({rank0, rank1});
    {
        auto w = train(one, "small", {}, dist_config());
        const auto status = w->wait(240);
        ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << "\n"
                                                                     << w->err();
    }
    const auto a = newest(rank0), b = newest(rank1), single = newest(one);
    EXPECT_EQ(a.meta.progress.step, 16);
    EXPECT_EQ(b.meta.progress.step, 16);
    EXPECT_EQ(single.meta.progress.step, 16);
    EXPECT_EQ(a.meta.world_size, 2);
    EXPECT_EQ(single.meta.world_size, 1);
    EXPECT_EQ(smartcash::train::hash_tensors(a.model), smartcash::train::hash_tensors(b.model))
        << "the ranks' weights differ";
    std::size_t params = 0;
    const double diff = max_parameter_difference(a, single, &params);
    EXPECT_GT(params, 10u);
    EXPECT_LT(diff, 1e-4) << "two ranks and one process trained different parameters";
    // Both ranks report the global step loss, equal to one process's.
    const auto lines0 = metric_lines(rank0, "step"), lines1 = metric_lines(rank1, "step"),
               lines = metric_lines(one, "step");
    ASSERT_EQ(lines0.size(), lines.size());
    ASSERT_EQ(lines1.size(), lines.size());
    for (std::size_t k = 0; k < lines.size(); ++k) {
        EXPECT_EQ(lines0[k].value("loss", -1.0), lines1[k].value("loss", -2.0)) << k;
        EXPECT_NEAR(lines0[k].value("loss", -1.0), lines[k].value("loss", -2.0), 1e-4) << k;
    }
    std::cout << "[ figures  ] largest parameter difference " << diff << " over " << params
              << " parameters\n";
}

// SIGTERM to one rank in the middle of the run: both ranks checkpoint the same step and exit
// with requested_stop. A single-process resume of a rank's directory is refused (world size 2
// against 1). With rank 1's newest checkpoint gone, both ranks resume from the newest step they
// both have, and end with the weights of an uninterrupted two-rank run.
TEST_F(WorkerDistributed, StopOnOneRankStopsBothAtTheSameStepAndResumesExactly) {
    const std::string ref0 = run_dir("ref0"), ref1 = run_dir("ref1");
    run_ranks({ref0, ref1});
    const auto reference = final_hash(ref0);
    ASSERT_EQ(reference.second, 16);
    EXPECT_EQ(final_hash(ref1), reference);

    const std::string run0 = run_dir("rank0"), run1 = run_dir("rank1");
    {
        const int port = free_port();
        auto w0 = rank(0, port, run0);
        auto w1 = rank(1, port, run1);
        while (w1->running() && metric_step_lines(run1) < 3) w1->poll_reports(5);
        // Rank 0 is held while the signal goes to rank 1: the job cannot run on to its end
        // meanwhile (rank 1 waits for rank 0 in its next collective).
        w0->signal(SIGSTOP);
        ASSERT_TRUE(w1->running()) << w1->err();
        w1->signal(SIGTERM);
        w0->signal(SIGCONT);
        const auto s1 = w1->wait(120), s0 = w0->wait(120);
        ASSERT_TRUE(s1.exited && s1.code == exit_code::requested_stop) << s1.describe() << "\n"
                                                                       << w1->err();
        ASSERT_TRUE(s0.exited && s0.code == exit_code::requested_stop) << s0.describe() << "\n"
                                                                       << w0->err();
        const auto stop0 = w0->reports_of("stopping"), stop1 = w1->reports_of("stopping");
        ASSERT_EQ(stop0.size(), 1u);
        ASSERT_EQ(stop1.size(), 1u);
        const auto step = stop1[0].value("step", std::int64_t{-1});
        EXPECT_EQ(stop0[0].value("step", std::int64_t{-2}), step);
        EXPECT_GE(step, 3);
        EXPECT_LT(step, 16);
        EXPECT_EQ(stop1[0].value("reason", std::string()), "SIGTERM");
        EXPECT_EQ(stop0[0].value("reason", std::string()), "another rank stopped");
        for (const auto& run : {run0, run1}) {
            auto ci = info(step_checkpoints(run).rbegin()->second);
            EXPECT_EQ(ci.json.value("step", std::int64_t{-1}), step) << run;
            EXPECT_EQ(ci.json.value("kind", std::string()), "stop") << run;
            EXPECT_EQ(ci.json.value("world_size", 0), 2) << run;
        }
    }
    {
        // One process cannot continue a two-rank run.
        const std::string before = step_checkpoints(run0).rbegin()->second;
        auto w = train(run0, "small", {}, dist_config());
        const auto status = w->wait(120);
        const std::string err = w->err();
        ASSERT_TRUE(status.exited) << status.describe() << "\n" << err;
        EXPECT_EQ(status.code, exit_code::config_error) << err;
        EXPECT_NE(err.find("world size 2"), std::string::npos) << err;
        EXPECT_NE(err.find("world size 1"), std::string::npos) << err;
        EXPECT_EQ(step_checkpoints(run0).rbegin()->second, before);
    }
    // Rank 1 loses its newest checkpoint: the ranks resume from the newest step both have.
    const auto kept = step_checkpoints(run1);
    ASSERT_GE(kept.size(), 2u);
    const auto [lost_step, lost_path] = *kept.rbegin();
    fs::remove(lost_path);
    fs::remove(fs::path(lost_path).replace_extension(".json"));
    const std::int64_t agreed = step_checkpoints(run1).rbegin()->first;
    ASSERT_LT(agreed, lost_step);
    const std::string err0 = resume_both_to_the_end(run0, run1, agreed);
    EXPECT_NE(err0.find("the newest checkpoint every rank has"), std::string::npos) << err0;
    EXPECT_EQ(final_hash(run0), reference);
    EXPECT_EQ(final_hash(run1), reference);
}

// A world size that cannot split the step into whole micro-batches, a rank out of range and a
// bad port are config errors before anything is trained; no peer is needed to see them.
TEST_F(WorkerDistributed, ImpossibleRankSettingsAreConfigErrors) {
    struct Case {
        std::vector<std::string> env;
        std::string tier;
        std::vector<std::string> expected;
    };
    const std::vector<Case> cases = {
        {{"WORLD_SIZE=2", "RANK=0", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=29511"},
         "big",
         {"training.effective_batch", "'big'", "2 x 4 = 8"}},
        {{"WORLD_SIZE=2", "RANK=2", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=29511"},
         "small",
         {"RANK", "out of range"}},
        {{"WORLD_SIZE=2", "RANK=1", "MASTER_ADDR=127.0.0.1", "MASTER_PORT=99999"},
         "small",
         {"MASTER_PORT"}},
    };
    for (const auto& c : cases) {
        LaunchOptions options;
        options.env = c.env;
        auto w = train(run_dir(), c.tier, options, dist_config());
        const auto status = w->wait(60);
        const std::string err = w->err();
        ASSERT_TRUE(status.exited) << status.describe() << "\n" << err;
        EXPECT_EQ(status.code, exit_code::config_error) << err;
        for (const auto& text : c.expected) EXPECT_NE(err.find(text), std::string::npos) << err;
        EXPECT_TRUE(step_checkpoints(run_dir()).empty());
    }
}

// A rank that dies (SIGKILL) mid-run: the other fails in its next collective instead of hanging,
// drops the step's gradients, writes an emergency checkpoint of the last step it completed and
// exits with peer_lost. Rank 1 freezes itself at a known step boundary (a test hook) before it is
// killed, so rank 0 always fails at the same place: the agreement before step 4. Started again,
// both ranks resume from the newest step they both have and end with the weights of an
// uninterrupted run.
TEST_F(WorkerDistributed, ARankThatDiesMakesTheOtherCheckpointAndExitPeerLost) {
    const std::string ref0 = run_dir("ref0"), ref1 = run_dir("ref1");
    run_ranks({ref0, ref1});
    const auto reference = final_hash(ref0);
    ASSERT_EQ(reference.second, 16);

    const std::string run0 = run_dir("rank0"), run1 = run_dir("rank1");
    {
        const int port = free_port();
        auto w0 = rank(0, port, run0);
        auto w1 = rank(1, port, run1, "small", 2, {"SMARTCASH_TEST_FREEZE_AT_STEP=3"});
        while (w1->running() &&
               w1->err().find("test hook: frozen at step 3") == std::string::npos) {
            w1->poll_reports(5);
            w0->poll_reports(5);
        }
        ASSERT_TRUE(w1->running()) << w1->err();
        w1->signal(SIGKILL);
        EXPECT_TRUE(w1->wait(60).killed_by(SIGKILL));
        const auto status = w0->wait(120);
        const std::string err = w0->err();
        ASSERT_TRUE(status.exited) << status.describe() << "\n" << err;
        EXPECT_EQ(status.code, exit_code::peer_lost) << err;
        EXPECT_NE(err.find("rank 0 of 2"), std::string::npos) << err;
        EXPECT_NE(err.find("another rank has died"), std::string::npos) << err;
        EXPECT_NE(err.find("'step boundary flags'"), std::string::npos) << err;

        // The last step rank 0 completed (and reported) is the step of its newest checkpoint.
        const auto lines = metric_lines(run0, "step");
        ASSERT_FALSE(lines.empty());
        const auto last_completed = lines.back().value("step", std::int64_t{-1});
        EXPECT_EQ(last_completed, 3);
        const auto stopping = w0->reports_of("stopping");
        ASSERT_EQ(stopping.size(), 1u) << err;
        EXPECT_EQ(stopping[0].value("exit_code", 0), exit_code::peer_lost);
        EXPECT_EQ(stopping[0].value("step", std::int64_t{-1}), last_completed);
        EXPECT_EQ(stopping[0].value("reason", std::string()).rfind("another rank is gone: ", 0), 0u)
            << stopping[0].dump();
        const auto newest_file = step_checkpoints(run0).rbegin()->second;
        EXPECT_EQ(stopping[0].value("checkpoint", std::string()), newest_file);
        auto ci = info(newest_file);
        EXPECT_EQ(ci.json.value("step", std::int64_t{-1}), last_completed) << ci.json.dump();
        EXPECT_EQ(ci.json.value("kind", std::string()), "emergency") << ci.json.dump();
        EXPECT_TRUE(ci.json.value("valid", false)) << ci.json.dump();
    }
    // Rank 1's newest checkpoint is older (step 2): both resume there and finish.
    const std::int64_t agreed = step_checkpoints(run1).rbegin()->first;
    EXPECT_EQ(agreed, 2);
    resume_both_to_the_end(run0, run1, agreed);
    EXPECT_EQ(final_hash(run0), reference);
    EXPECT_EQ(final_hash(run1), reference);
}

}  // namespace
