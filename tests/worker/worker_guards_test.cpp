// The worker's guards against a run that cannot go on as it is, on the real smartcash-worker
// binary: optimizer steps with a non-finite loss are skipped and counted, and too many in a row end
// the run (a fatal exit); a dataset that changed under a run directory refuses the resume.
#include "common/exit_codes.hpp"
#include "worker_process.hpp"

namespace {

using namespace worker_test;
namespace exit_code = smartcash::exit_code;

/// The test hook that gives optimizer steps FROM .. FROM+COUNT-1 (numbered by the steps completed
/// before them) a non-finite loss through the real forward and backward passes.
std::string nonfinite_steps(int from, int count = 0) {
    return "SMARTCASH_TEST_NONFINITE_LOSS=" + std::to_string(from) +
           (count > 0 ? ":" + std::to_string(count) : "");
}

class WorkerGuards : public WorkerTest {
  protected:
    /// weights_sha256 of the step checkpoint of `step` in a run.
    std::string weights_at(const std::string& run, std::int64_t step) {
        auto files = step_checkpoints(run);
        if (!files.count(step)) return "(no checkpoint at step " + std::to_string(step) + ")";
        return info(files.at(step)).json.value("weights_sha256", std::string());
    }

    /// Waits until a checkpoint report of at least `step` arrives (or the worker ends).
    static void wait_for_checkpoint(WorkerProcess& w, std::int64_t step) {
        auto reached = [&] {
            for (const auto& c : w.reports_of("checkpoint"))
                if (c.value("step", std::int64_t{-1}) >= step) return true;
            return false;
        };
        while (w.running() && !reached()) w.poll_reports(5);
    }
};

// Steps 5, 6 and 7 get a non-finite loss (below the default limit of 5 in a row): each is
// skipped (no update: the weights of step 4 and step 6 are equal), marked in metrics.jsonl and
// counted in the progress and done reports, and the run finishes. A run killed inside the skipped
// stretch and resumed ends with the same weights as the uninterrupted one.
TEST_F(WorkerGuards, NonFiniteStepsAreSkippedCountedAndResumeExactly) {
    const std::string config =
        changed_config("keep-all.yaml", "keep_checkpoints: 3", "keep_checkpoints: 30");
    const LaunchOptions hook{{nonfinite_steps(4, 3)}, {}, true};
    const std::string a = run_dir("a");
    {
        auto w = train(a, "big", hook, config);
        const auto status = w->wait();
        const std::string err = w->err();
        ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << "\n"
                                                                     << err;
        EXPECT_EQ(count_of(err, "non-finite"), 3) << err;
        auto done = w->reports_of("done");
        ASSERT_EQ(done.size(), 1u);
        EXPECT_EQ(done[0].value("skipped_steps", -1), 3) << done[0].dump();
        // A progress report right after each skipped step carries the count.
        int max_reported = 0;
        for (const auto& p : w->reports_of("progress")) {
            ASSERT_TRUE(p.contains("skipped_steps")) << p.dump();
            max_reported = std::max(max_reported, p.value("skipped_steps", 0));
        }
        EXPECT_EQ(max_reported, 3);
    }
    const auto steps = metric_lines(a, "step");
    ASSERT_EQ(steps.size(), 24u);
    for (const auto& line : steps) {
        const auto step = line.value("step", std::int64_t{-1});
        const bool bad = step >= 5 && step <= 7;
        EXPECT_EQ(line.value("skipped", !bad), bad) << line.dump();
        EXPECT_EQ(line.value("skipped_steps", -1), step < 5    ? 0
                                                   : step <= 7 ? step - 4
                                                               : 3)
            << line.dump();
    }
    EXPECT_EQ(metric_lines(a, "epoch").back().value("skipped_steps", -1), 3);
    // No update in steps 5 and 6; step 8 (a good one) moves the weights again.
    EXPECT_EQ(weights_at(a, 4), weights_at(a, 6));
    EXPECT_NE(weights_at(a, 6), weights_at(a, 8));
    const auto uninterrupted = final_hash(a);
    EXPECT_EQ(uninterrupted.second, 24);

    // The same run, killed after the checkpoint of step 6 (two skipped steps into the stretch).
    const std::string b = run_dir("b");
    {
        auto w = train(b, "big", hook, config);
        wait_for_checkpoint(*w, 6);
        ASSERT_TRUE(w->running()) << w->err();
        w->signal(SIGKILL);
        w->wait();
    }
    auto w = train(b, "big", hook, config);
    const auto status = w->wait();
    ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << "\n"
                                                                 << w->err();
    EXPECT_GE(w->reports_of("hello").at(0).value("resumed_step", std::int64_t{-1}), 6);
    EXPECT_EQ(w->reports_of("done").at(0).value("skipped_steps", -1), 3);
    EXPECT_EQ(final_hash(b), uninterrupted);
}

// Every step from step 5 on has a non-finite loss, and training.max_nonfinite_steps is 3: the
// third skipped step in a row (step 7) ends the run with the diverged exit (fatal for the
// supervisor) and a message that says what happened; nothing after step 4 was learnt. A resume
// with the same fault continues the count from the checkpoint (step 6, two in a row) and ends at
// the same step; a resume without it finishes.
TEST_F(WorkerGuards, TooManyNonFiniteStepsInARowEndTheRun) {
    const std::string config = changed_config("limit3.yaml", "keep_checkpoints: 3",
                                              "keep_checkpoints: 3\n  max_nonfinite_steps: 3");
    const LaunchOptions hook{{nonfinite_steps(4)}, {}, true};
    const std::string run = run_dir();
    auto expect_diverged_at_step_7 = [&](WorkerProcess& w) {
        const auto status = w.wait();
        const std::string err = w.err();
        ASSERT_TRUE(status.exited) << status.describe() << "\n" << err;
        ASSERT_EQ(status.code, exit_code::diverged) << err;
        auto errors = w.reports_of("error");
        ASSERT_EQ(errors.size(), 1u) << err;
        EXPECT_EQ(errors[0].value("kind", std::string()), "training");
        const std::string message = errors[0].value("message", std::string());
        EXPECT_NE(message.find("3 optimizer steps in a row"), std::string::npos) << message;
        EXPECT_NE(message.find("non-finite"), std::string::npos) << message;
        EXPECT_NE(message.find("training.max_nonfinite_steps"), std::string::npos) << message;
        EXPECT_NE(err.find(message), std::string::npos) << err;
        const auto steps = metric_lines(run, "step");
        ASSERT_FALSE(steps.empty());
        EXPECT_EQ(steps.back().value("step", std::int64_t{-1}), 7);
        EXPECT_EQ(w.reports_of("done").size(), 0u);
    };
    {
        auto w = train(run, "big", hook, config);
        expect_diverged_at_step_7(*w);
        EXPECT_EQ(metric_step_lines(run), 7);
    }
    // The newest checkpoint is step 6 and holds the weights of step 4.
    ASSERT_EQ(step_checkpoints(run).rbegin()->first, 6);
    EXPECT_EQ(weights_at(run, 4), weights_at(run, 6));
    {
        auto w = train(run, "big", hook, config);
        expect_diverged_at_step_7(*w);
        EXPECT_EQ(w->reports_of("hello").at(0).value("resumed_step", std::int64_t{-1}), 6);
        EXPECT_EQ(metric_step_lines(run), 8)
            << "the resumed launch should end after one more skipped step";
    }
    auto w = train(run, "big", {}, config);
    const auto status = w->wait();
    ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << "\n"
                                                                 << w->err();
    EXPECT_EQ(w->reports_of("hello").at(0).value("resumed_step", std::int64_t{-1}), 6);
    EXPECT_EQ(w->reports_of("done").at(0).value("skipped_steps", -1), 2);
}

// A dataset that changed under a run directory (images removed, added, or renamed) refuses the
// resume with a config error that names the dataset and the change, and leaves the checkpoints
// as they were; with the dataset restored the run resumes.
TEST_F(WorkerGuards, ResumeRefusesAChangedDataset) {
    const std::string data = dir() + "/dataset";
    {
        WorkerProcess synth(
            {"synth", "--out", data, "--images", "40", "--size", "96", "--seed", "3"},
            log_base("synth"), LaunchOptions{{}, {}, false});
        const auto status = synth.wait(120);
        ASSERT_TRUE(status.exited && status.code == 0) << status.describe() << "\n" << synth.err();
    }
    const std::string config =
        changed_config("own-data.yaml", "dataset: synthetic", "dataset: " + data);
    const std::string run = run_dir();
    std::int64_t stopped_at = -1;
    {
        auto w = train(run, "big", {}, config);
        ASSERT_TRUE(w->wait_report("checkpoint", 120)) << w->err();
        w->signal(SIGTERM);
        const auto status = w->wait(60);
        ASSERT_TRUE(status.exited && status.code == exit_code::requested_stop)
            << status.describe() << "\n"
            << w->err();
        stopped_at = w->reports_of("stopping").at(0).value("step", std::int64_t{-1});
        ASSERT_GT(stopped_at, 0);
    }
    auto checkpoint_files = [&] {
        std::map<std::string, std::string> out;
        for (const auto& e : fs::directory_iterator(run + "/checkpoints"))
            out[e.path().filename().string()] = read_text(e.path().string());
        return out;
    };
    const auto before = checkpoint_files();

    const fs::path images = fs::path(data) / "train" / "images";
    const fs::path labels = fs::path(data) / "train" / "labels";
    std::vector<fs::path> train_images;
    for (const auto& e : fs::directory_iterator(images)) train_images.push_back(e.path());
    std::sort(train_images.begin(), train_images.end());
    ASSERT_EQ(train_images.size(), 32u);
    auto label_of = [&](const fs::path& image) {
        return labels / (image.stem().string() + ".txt");
    };
    auto move = [](const fs::path& from, const fs::path& to) { fs::rename(from, to); };

    auto expect_refused = [&](const std::string& change, const std::vector<std::string>& words) {
        auto w = train(run, "big", {}, config);
        const auto status = w->wait();
        const std::string err = w->err();
        ASSERT_TRUE(status.exited) << change << ": " << status.describe() << "\n" << err;
        EXPECT_EQ(status.code, exit_code::config_error) << change << ": " << err;
        auto errors = w->reports_of("error");
        ASSERT_EQ(errors.size(), 1u) << change << ": " << err;
        EXPECT_EQ(errors[0].value("kind", std::string()), "config");
        const std::string message = errors[0].value("message", std::string());
        EXPECT_NE(message.find("cannot resume"), std::string::npos) << change << ": " << message;
        EXPECT_NE(message.find("dataset " + data), std::string::npos) << change << ": " << message;
        for (const auto& word : words)
            EXPECT_NE(message.find(word), std::string::npos) << change << ": " << message;
        EXPECT_TRUE(w->reports_of("hello").empty());
        EXPECT_EQ(checkpoint_files(), before)
            << change << ": the refused launch changed the checkpoints";
    };

    // Two train images removed.
    const fs::path aside = fs::path(dir()) / "aside";
    fs::create_directories(aside);
    for (int k : {3, 17}) {
        move(train_images[k], aside / train_images[k].filename());
        move(label_of(train_images[k]), aside / label_of(train_images[k]).filename());
    }
    expect_refused("two images removed", {"train split has 30 images", "32"});
    for (int k : {3, 17}) {
        move(aside / train_images[k].filename(), train_images[k]);
        move(aside / label_of(train_images[k]).filename(), label_of(train_images[k]));
    }

    // One train image added.
    const fs::path extra = images / ("zz-extra" + train_images[0].extension().string());
    fs::copy_file(train_images[0], extra);
    fs::copy_file(label_of(train_images[0]), label_of(extra));
    expect_refused("one image added", {"train split has 33 images", "32"});
    fs::remove(extra);
    fs::remove(label_of(extra));

    // One train image renamed: the same count, another file list.
    const fs::path renamed = images / ("renamed" + train_images[5].extension().string());
    move(train_images[5], renamed);
    move(label_of(train_images[5]), label_of(renamed));
    expect_refused("one image renamed", {"train split", "file list"});
    move(renamed, train_images[5]);
    move(label_of(renamed), label_of(train_images[5]));

    // Restored: the run resumes where it stopped.
    auto w = train(run, "big", {}, config);
    auto hello = w->wait_report("hello", 120);
    ASSERT_TRUE(hello) << w->err();
    EXPECT_EQ(hello->value("resumed_step", std::int64_t{-1}), stopped_at);
}

}  // namespace
