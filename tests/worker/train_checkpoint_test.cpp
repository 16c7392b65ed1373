// In-process checkpoint round trips: weights, optimizer state and RNG come back exactly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "worker/checkpoint/checkpoint.hpp"
#include "worker/model/detector.hpp"
#include "worker/train/optimizer.hpp"

namespace {

using namespace smartcash;
namespace fs = std::filesystem;

model::Detector tiny(std::uint64_t seed) {
    torch::manual_seed(seed);
    model::DetectorOptions o;
    o.width_multiple = 0.1;
    o.depth_multiple = 0.2;
    return model::Detector(o);
}

/// One AdamW step on a fixed quadratic of the parameters, so state exists and is non-trivial.
void fake_step(model::DetectorImpl& m, torch::optim::AdamW& opt) {
    opt.zero_grad();
    torch::Tensor loss = torch::zeros({});
    for (auto& p : m.parameters()) loss = loss + (p * p).sum() * 1e-3 + p.sum() * 1e-4;
    loss.backward();
    opt.step();
}

std::string scratch(const std::string& name) {
    auto dir = fs::path(SMARTCASH_TEST_TMP) / name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir.string();
}

train::CheckpointMeta meta_at(std::int64_t step) {
    train::CheckpointMeta meta;
    meta.kind = "step";
    meta.progress.step = step;
    meta.progress.order = {3, 1, 2, 0};
    meta.tier = "cpu";
    meta.device = "cpu";
    meta.micro_batch = 2;
    meta.effective_batch = 4;
    meta.config_yaml = "{}";
    return meta;
}

TEST(CheckpointRoundTrip, RestoresWeightsOptimizerAndRng) {
    auto a = tiny(1);
    TrainingConfig cfg;
    auto opt_a = train::make_optimizer(*a, cfg);
    train::apply_learning_rates(*opt_a, cfg, 2, 50, 100);
    fake_step(*a, *opt_a);
    fake_step(*a, *opt_a);
    torch::manual_seed(99);
    const std::string bytes = train::serialize_checkpoint(*a, *opt_a, meta_at(2), nullptr);
    train::CheckpointStore store(scratch("ckpt-roundtrip"), 3);
    store.save(bytes, meta_at(2));

    std::vector<std::string> problems;
    auto loaded = store.load_newest_good(&problems);
    ASSERT_TRUE(loaded.has_value());
    EXPECT_TRUE(problems.empty());
    EXPECT_EQ(loaded->meta.progress.step, 2);
    EXPECT_EQ(loaded->meta.progress.order, (std::vector<std::int64_t>{3, 1, 2, 0}));

    auto b = tiny(2);  // different initial weights
    auto opt_b = train::make_optimizer(*b, cfg);
    train::apply_learning_rates(*opt_b, cfg, 2, 50, 100);
    torch::manual_seed(12345);
    train::restore_checkpoint(*loaded, *b, *opt_b, torch::kCPU);
    EXPECT_EQ(train::hash_tensors(train::model_tensors(*a)),
              train::hash_tensors(train::model_tensors(*b)));
    // The RNG continues where it was when the checkpoint was taken.
    auto r_b = torch::rand({4});
    torch::manual_seed(99);
    auto r_a = torch::rand({4});
    EXPECT_TRUE(torch::equal(r_a, r_b));
    // The optimizer state came back too: one more identical step keeps them identical.
    fake_step(*a, *opt_a);
    fake_step(*b, *opt_b);
    EXPECT_EQ(train::hash_tensors(train::model_tensors(*a)),
              train::hash_tensors(train::model_tensors(*b)));
}

TEST(CheckpointRoundTrip, BadNewestFallsBackToThePreviousOne) {
    auto m = tiny(3);
    TrainingConfig cfg;
    auto opt = train::make_optimizer(*m, cfg);
    const std::string dir = scratch("ckpt-fallback");
    train::CheckpointStore store(dir, 5);
    store.save(train::serialize_checkpoint(*m, *opt, meta_at(4), nullptr), meta_at(4));
    store.save(train::serialize_checkpoint(*m, *opt, meta_at(6), nullptr), meta_at(6));
    // Flip one byte in the middle of the newest.
    const std::string newest = dir + "/step-00000006.pt";
    {
        std::fstream f(newest, std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(static_cast<std::streamoff>(fs::file_size(newest) / 2));
        char c = 0;
        f.read(&c, 1);
        f.seekp(static_cast<std::streamoff>(fs::file_size(newest) / 2));
        c = static_cast<char>(c ^ 0x10);
        f.write(&c, 1);
    }
    std::vector<std::string> problems;
    auto loaded = store.load_newest_good(&problems);
    ASSERT_TRUE(loaded.has_value());
    EXPECT_EQ(loaded->meta.progress.step, 4);
    ASSERT_EQ(problems.size(), 1u);
    EXPECT_NE(problems[0].find("step-00000006.pt"), std::string::npos);
    EXPECT_NE(problems[0].find("checksum mismatch"), std::string::npos);
}

TEST(CheckpointRoundTrip, KeepsOnlyTheLastK) {
    auto m = tiny(4);
    TrainingConfig cfg;
    auto opt = train::make_optimizer(*m, cfg);
    const std::string dir = scratch("ckpt-prune");
    train::CheckpointStore store(dir, 2);
    for (int s : {2, 4, 6, 8})
        store.save(train::serialize_checkpoint(*m, *opt, meta_at(s), nullptr), meta_at(s));
    EXPECT_FALSE(fs::exists(dir + "/step-00000002.pt"));
    EXPECT_FALSE(fs::exists(dir + "/step-00000004.json"));
    EXPECT_TRUE(fs::exists(dir + "/step-00000006.pt"));
    EXPECT_TRUE(fs::exists(dir + "/step-00000008.pt"));
}

TEST(CheckpointRoundTrip, PruningKeepsTheNewestGoodBesideADamagedNewerOne) {
    auto m = tiny(5);
    TrainingConfig cfg;
    auto opt = train::make_optimizer(*m, cfg);
    const std::string dir = scratch("ckpt-prune-damaged");
    auto save = [&](train::CheckpointStore& store, std::int64_t step) {
        store.save(train::serialize_checkpoint(*m, *opt, meta_at(step), nullptr), meta_at(step));
    };
    {
        train::CheckpointStore store(dir, 1);
        save(store, 2);
        save(store, 4);
    }
    ASSERT_FALSE(fs::exists(dir + "/step-00000002.pt"));
    fs::resize_file(dir + "/step-00000004.pt", fs::file_size(dir + "/step-00000004.pt") / 2);
    {
        // keep 1: the only checkpoint is damaged, the run starts over; what it writes stays.
        train::CheckpointStore store(dir, 1);
        std::vector<std::string> problems;
        EXPECT_FALSE(store.load_newest_good(&problems).has_value());
        ASSERT_EQ(problems.size(), 1u);
        save(store, 2);
        EXPECT_TRUE(fs::exists(dir + "/step-00000002.pt"));
        EXPECT_TRUE(fs::exists(dir + "/step-00000002.json"));
    }
    {
        // keep 2: the two newest good ones stay, the damaged one counts for nothing.
        train::CheckpointStore store(dir, 2);
        std::vector<std::string> problems;
        auto loaded = store.load_newest_good(&problems);
        ASSERT_TRUE(loaded.has_value());
        EXPECT_EQ(loaded->meta.progress.step, 2);
        save(store, 3);
        EXPECT_TRUE(fs::exists(dir + "/step-00000002.pt"));
        EXPECT_TRUE(fs::exists(dir + "/step-00000003.pt"));
        // Writing the damaged file's step again replaces it; then the usual pruning applies.
        save(store, 4);
        EXPECT_FALSE(fs::exists(dir + "/step-00000002.pt"));
        EXPECT_TRUE(fs::exists(dir + "/step-00000003.pt"));
        ASSERT_TRUE(store.load_newest_good(&problems).has_value());
        EXPECT_EQ(store.load_newest_good(&problems)->meta.progress.step, 4);
    }
}

}  // namespace
