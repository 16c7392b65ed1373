// The ranks of a job as smartcashd reads them from the variables torchrun sets.
#include "daemon/shell/world_options.hpp"

#include <gtest/gtest.h>

#include <map>

namespace smartcash::daemon {
namespace {

auto from(const std::map<std::string, std::string>& vars) {
    return [vars](const char* name) -> const char* {
        auto it = vars.find(name);
        return it == vars.end() ? nullptr : it->second.c_str();
    };
}

TEST(WorldOptions, TheTorchrunVariablesGiveTheRanks) {
    WorldOptions o;
    EXPECT_FALSE(world_from_environment(o, from({{"WORLD_SIZE", "4"},
                                                 {"RANK", "3"},
                                                 {"MASTER_ADDR", "10.0.0.1"},
                                                 {"MASTER_PORT", "29500"}})));
    EXPECT_EQ(o.world_size, 4);
    EXPECT_EQ(o.rank, 3);
    EXPECT_EQ(o.master(), "10.0.0.1:29500");
    EXPECT_FALSE(check_world(o));
}

TEST(WorldOptions, NoVariablesIsOneRankAndNeedsNothingElse) {
    WorldOptions o;
    EXPECT_FALSE(world_from_environment(o, from({})));
    EXPECT_FALSE(o.several());
    EXPECT_FALSE(check_world(o));
}

TEST(WorldOptions, ABadValueIsNamed) {
    WorldOptions o;
    auto error = world_from_environment(o, from({{"RANK", "1x"}}));
    ASSERT_TRUE(error);
    EXPECT_NE(error->find("RANK='1x'"), std::string::npos) << *error;

    WorldOptions two;
    two.world_size = 2;
    two.rank = 1;
    two.master_addr = "h";
    two.master_port = 0;
    ASSERT_TRUE(check_world(two));
    two.master_port = 1;
    EXPECT_FALSE(check_world(two));
    two.lost_after_s = 0;
    EXPECT_TRUE(check_world(two));
    two.lost_after_s = 30;
    two.rank = -1;
    EXPECT_TRUE(check_world(two));
    two.world_size = 0;
    EXPECT_TRUE(check_world(two));
}

}  // namespace
}  // namespace smartcash::daemon
