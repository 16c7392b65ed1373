// LiveProgress: the step rate over the last minute and the time left it gives (status' eta_s).
#include "daemon/rules/progress_rate.hpp"

#include <gtest/gtest.h>

namespace smartcash::daemon {
namespace {

protocol::Progress at_step(std::int64_t step, std::int64_t total = 100) {
    protocol::Progress p;
    p.step = step;
    p.total_steps = total;
    return p;
}

TEST(LiveProgress, TheRateAndTheTimeLeftComeFromRecentReports) {
    LiveProgress p;
    EXPECT_FALSE(p.eta_s());
    p.observe(0, at_step(0));
    EXPECT_FALSE(p.steps_per_s()) << "one report is no rate";
    p.observe(10, at_step(20));
    ASSERT_TRUE(p.steps_per_s());
    EXPECT_DOUBLE_EQ(*p.steps_per_s(), 2.0);
    EXPECT_DOUBLE_EQ(*p.eta_s(), 40.0);  // 80 steps left at 2 per second
    // A minute later the old reports no longer count: the rate is the recent one.
    p.observe(70, at_step(80));
    p.observe(130, at_step(90));
    EXPECT_NEAR(*p.steps_per_s(), 10.0 / 60.0, 1e-9);
}

TEST(LiveProgress, AResumeFromAnOlderStepStartsTheRateAfresh) {
    LiveProgress p;
    p.observe(0, at_step(10));
    p.observe(5, at_step(20));
    p.observe(6, at_step(16));  // a new worker resumed from an older checkpoint
    EXPECT_FALSE(p.steps_per_s());
    p.observe(8, at_step(20));
    EXPECT_DOUBLE_EQ(*p.steps_per_s(), 2.0);
    p.restart();
    EXPECT_FALSE(p.eta_s());
    EXPECT_EQ(p.last()->step, 20);
}

}  // namespace
}  // namespace smartcash::daemon
