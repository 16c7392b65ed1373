// Starting from pretrained weights on the real smartcash-worker binary: export a trained
// backbone, start a fresh run from it (phase 1 keeps it frozen), and resume without reloading it.
#include "common/exit_codes.hpp"
#include "common/sha256.hpp"
#include "worker_process.hpp"

namespace {

using namespace worker_test;
namespace exit_code = smartcash::exit_code;

class WorkerPretrained : public WorkerTest {
  protected:
    ExitStatus run(const std::vector<std::string>& args, std::string* out = nullptr,
                   std::string* err = nullptr) {
        WorkerProcess p(args, log_base(args.front()), LaunchOptions{{}, {}, false});
        auto status = p.wait(300);
        if (out) *out = p.out();
        if (err) *err = p.err();
        return status;
    }
};

TEST_F(WorkerPretrained, FreshRunStartsFromAnExportedBackboneAndResumeNeverReloadsIt) {
    // A backbone trained by a first run, exported under our own names.
    const std::string first = run_dir("first");
    {
        auto w = train(first);
        const auto status = w->wait();
        ASSERT_TRUE(status.exited && status.code == exit_code::done)
            << status.describe() << w->err();
    }
    const std::string weights = dir() + "/backbone.safetensors";
    std::string out, err;
    auto status = run({"export", "--checkpoint", first + "/checkpoints/best.pt", "--out", weights,
                       "--backbone-only"},
                      &out, &err);
    ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << err;
    const std::string weights_sha = smartcash::sha256_file(weights);

    // model-info says what would load.
    status = run({"model-info", "--config", tiny_config(), "--pretrained", weights, "--json"}, &out,
                 &err);
    ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe() << err;
    const Json mi = Json::parse(out);
    EXPECT_EQ(mi["pretrained"].value("naming", ""), "smartcash");
    EXPECT_EQ(mi["pretrained"].value("sha256", ""), weights_sha);
    EXPECT_FALSE(mi["pretrained"].value("whole_detector", true));
    EXPECT_TRUE(mi["pretrained"]["missing"].empty());

    // A fresh run of phase 1 only, from that backbone.
    const std::string phase1 =
        changed_config("phase1.yaml", "phase2: {epochs: 2", "phase2: {epochs: 0");
    const std::string second = run_dir("second");
    {
        WorkerProcess w({"train", "--config", phase1, "--run-dir", second, "--tier", "big",
                         "--pretrained", weights},
                        log_base("train"), LaunchOptions{{}, {}, false});
        status = w.wait(300);
        ASSERT_TRUE(status.exited && status.code == exit_code::done)
            << status.describe() << w.err();
        EXPECT_NE(w.err().find("started from pretrained weights " + weights), std::string::npos)
            << w.err();
    }
    auto files = step_checkpoints(second);
    ASSERT_FALSE(files.empty());
    const Json ci = info(files.rbegin()->second).json;
    EXPECT_EQ(ci["pretrained"].value("file", ""), weights) << ci.dump();
    EXPECT_EQ(ci["pretrained"].value("sha256", ""), weights_sha);
    EXPECT_EQ(ci.value("input_normalization", ""), "none");  // our export records [0, 1] input

    // Phase 1 kept the backbone frozen, batch-norm statistics included: exporting it again
    // writes the same bytes.
    const std::string again = dir() + "/again.safetensors";
    status =
        run({"export", "--checkpoint", files.rbegin()->second, "--out", again, "--backbone-only"});
    ASSERT_TRUE(status.exited && status.code == exit_code::done) << status.describe();
    EXPECT_EQ(smartcash::sha256_file(again), weights_sha);

    // The file is gone: a resume does not need it (the weights come from the checkpoint), a
    // fresh start does.
    fs::remove(weights);
    {
        WorkerProcess w({"train", "--config", phase1, "--run-dir", second, "--tier", "big",
                         "--pretrained", weights},
                        log_base("train"), LaunchOptions{{}, {}, false});
        status = w.wait(300);
        ASSERT_TRUE(status.exited && status.code == exit_code::done)
            << status.describe() << w.err();
        EXPECT_NE(w.err().find("resumed from"), std::string::npos) << w.err();
        EXPECT_EQ(w.err().find("started from pretrained weights"), std::string::npos) << w.err();
    }
    const Json resumed = info(step_checkpoints(second).rbegin()->second).json;
    EXPECT_EQ(resumed["pretrained"].value("sha256", ""), weights_sha)
        << "carried by later checkpoints";

    WorkerProcess fresh({"train", "--config", phase1, "--run-dir", run_dir("third"), "--tier",
                         "big", "--pretrained", weights},
                        log_base("train"), LaunchOptions{{}, {}, false});
    status = fresh.wait(300);
    EXPECT_TRUE(status.exited && status.code == exit_code::config_error) << status.describe();
    EXPECT_NE(fresh.err().find("model.pretrained"), std::string::npos) << fresh.err();
    EXPECT_NE(fresh.err().find(weights), std::string::npos) << fresh.err();
}

}  // namespace
