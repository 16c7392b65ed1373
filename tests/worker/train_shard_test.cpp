// The shards of a step (worker/distributed/shard.hpp) and the ranks' settings from the
// environment (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT), without any process group.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "worker/distributed/process_group.hpp"
#include "worker/distributed/shard.hpp"

namespace {

using smartcash::ConfigError;
namespace dist = smartcash::dist;

// For several effective batches, world sizes and numbers of steps, the ranks' shards of every
// step are disjoint, contiguous, equal in size when the world size divides the batch, and
// together cover each position of the epoch exactly once, in order.
TEST(Shard, ShardsOfAllRanksAreDisjointAndCoverTheEpoch) {
    for (int effective : {1, 2, 4, 6, 8, 12, 16, 64}) {
        for (int world : {1, 2, 3, 4, 8}) {
            if (world > effective) continue;
            for (int steps : {1, 3, 7}) {
                std::vector<int> seen(static_cast<std::size_t>(effective * steps), 0);
                for (int step = 0; step < steps; ++step) {
                    const std::int64_t first = std::int64_t{step} * effective;
                    std::int64_t next = first;
                    for (int rank = 0; rank < world; ++rank) {
                        const auto s = dist::step_shard(first, effective, rank, world);
                        EXPECT_EQ(s.begin, next) << effective << " " << world << " " << rank;
                        EXPECT_GE(s.size(), effective / world);
                        EXPECT_LE(s.size(), effective / world + 1);
                        if (effective % world == 0) {
                            EXPECT_EQ(s.size(), effective / world);
                        }
                        for (auto pos = s.begin; pos < s.end; ++pos)
                            ++seen.at(static_cast<std::size_t>(pos));
                        next = s.end;
                    }
                    EXPECT_EQ(next, first + effective);
                }
                for (std::size_t pos = 0; pos < seen.size(); ++pos)
                    ASSERT_EQ(seen[pos], 1)
                        << "position " << pos << " (E " << effective << ", W " << world << ")";
            }
        }
    }
}

TEST(Shard, OneProcessTakesTheWholeStep) {
    const auto s = dist::step_shard(40, 8, 0, 1);
    EXPECT_EQ(s.begin, 40);
    EXPECT_EQ(s.end, 48);
}

std::function<const char*(const char*)> env_of(std::map<std::string, std::string> values) {
    auto held = std::make_shared<std::map<std::string, std::string>>(std::move(values));
    return [held](const char* name) -> const char* {
        auto it = held->find(name);
        return it == held->end() ? nullptr : it->second.c_str();
    };
}

std::string config_error_of(const std::map<std::string, std::string>& values) {
    try {
        dist::read_dist_env(env_of(values));
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "(no error)";
}

TEST(DistributedEnv, AbsentOrWorldSizeOneIsOneProcess) {
    EXPECT_FALSE(dist::read_dist_env(env_of({})).distributed());
    const auto one = dist::read_dist_env(env_of({{"WORLD_SIZE", "1"}, {"RANK", "0"}}));
    EXPECT_FALSE(one.distributed());
    EXPECT_EQ(one.rank, 0);
}

TEST(DistributedEnv, ReadsTheTorchrunVariables) {
    const auto env = dist::read_dist_env(env_of({{"WORLD_SIZE", "4"},
                                                 {"RANK", "3"},
                                                 {"MASTER_ADDR", "10.0.0.2"},
                                                 {"MASTER_PORT", "29500"},
                                                 {"SMARTCASH_DIST_TIMEOUT", "30"}}));
    EXPECT_TRUE(env.distributed());
    EXPECT_EQ(env.world_size, 4);
    EXPECT_EQ(env.rank, 3);
    EXPECT_EQ(env.master_addr, "10.0.0.2");
    EXPECT_EQ(env.master_port, 29500);
    EXPECT_EQ(env.timeout_s, 30);
    EXPECT_EQ(env.store_prefix, "");
    const auto shared =
        dist::read_dist_env(env_of({{"WORLD_SIZE", "2"},
                                    {"RANK", "0"},
                                    {"MASTER_ADDR", "127.0.0.1"},
                                    {"MASTER_PORT", "29500"},
                                    {"SMARTCASH_STORE_PREFIX", "smartcash/r/3/pg/"}}));
    EXPECT_EQ(shared.store_prefix, "smartcash/r/3/pg/");
}

TEST(DistributedEnv, BadValuesAreConfigErrorsNamingTheVariable) {
    const std::map<std::string, std::string> good = {
        {"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "29500"}};
    auto with = [&](const std::string& key, const std::string& value) {
        auto values = good;
        if (value.empty())
            values.erase(key);
        else
            values[key] = value;
        return config_error_of(values);
    };
    EXPECT_EQ(config_error_of(good), "(no error)");
    EXPECT_NE(with("RANK", "2").find("RANK"), std::string::npos);
    EXPECT_NE(with("RANK", "2").find("out of range"), std::string::npos) << with("RANK", "2");
    EXPECT_NE(with("RANK", "-1").find("out of range"), std::string::npos);
    EXPECT_NE(with("RANK", "").find("RANK"), std::string::npos);
    EXPECT_NE(with("WORLD_SIZE", "two").find("WORLD_SIZE"), std::string::npos);
    EXPECT_NE(with("WORLD_SIZE", "0").find("WORLD_SIZE"), std::string::npos);
    EXPECT_NE(with("MASTER_PORT", "70000").find("MASTER_PORT"), std::string::npos);
    EXPECT_NE(with("MASTER_PORT", "29500x").find("MASTER_PORT"), std::string::npos);
    EXPECT_NE(with("MASTER_PORT", "").find("MASTER_PORT"), std::string::npos);
    EXPECT_NE(with("MASTER_ADDR", "").find("MASTER_ADDR"), std::string::npos);
    EXPECT_NE(with("SMARTCASH_DIST_TIMEOUT", "0").find("SMARTCASH_DIST_TIMEOUT"),
              std::string::npos);
}

TEST(DistributedEnv, WorldSizeMustSplitTheStepIntoWholeMicroBatches) {
    smartcash::Config config;
    config.source_path = "job.yaml";
    config.training.effective_batch = 8;
    smartcash::TierConfig tier;
    tier.name = "cpu";
    tier.micro_batch = 2;
    EXPECT_NO_THROW(dist::check_world_fits(config, tier, 1));
    EXPECT_NO_THROW(dist::check_world_fits(config, tier, 2));
    EXPECT_NO_THROW(dist::check_world_fits(config, tier, 4));
    try {
        dist::check_world_fits(config, tier, 3);
        FAIL() << "world size 3 accepted";
    } catch (const ConfigError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("training.effective_batch"), std::string::npos) << what;
        EXPECT_NE(what.find("'cpu'"), std::string::npos) << what;
        EXPECT_NE(what.find("3 x 2 = 6"), std::string::npos) << what;
    }
    tier.micro_batch = 4;
    EXPECT_THROW(dist::check_world_fits(config, tier, 4), ConfigError);
}

}  // namespace
