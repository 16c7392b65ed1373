// The lines a person reads for journal entries, and which of them wait for -v.
#include "daemon/shell/event_text.hpp"

#include <gtest/gtest.h>

#include "common/world_messages.hpp"

namespace smartcash::daemon {
namespace {

protocol::JournalEvent checkpoint(const std::string& kind) {
    protocol::CheckpointEvent c;
    c.tier = "cpu";
    c.path = "/run/checkpoints/step-00000024.pt";
    c.step = 24;
    c.kind = kind;
    return c;
}

TEST(EventText, PeriodicCheckpointsWaitForVerboseAndTheOthersAreNews) {
    EXPECT_TRUE(is_detail(checkpoint("step")));
    EXPECT_TRUE(is_detail(checkpoint("epoch")));
    EXPECT_FALSE(is_detail(checkpoint("stop")));
    EXPECT_FALSE(is_detail(checkpoint("emergency")));
    EXPECT_TRUE(is_detail(protocol::JournalEvent{protocol::EpochEndEvent{}}));
    EXPECT_FALSE(is_detail(protocol::JournalEvent{protocol::EvalEvent{}}));
    EXPECT_FALSE(is_detail(protocol::JournalEvent{protocol::TierMoveEvent{"big", "small", "oom"}}));
}

TEST(EventText, AnotherRanksEndSaysWhatHappensHere) {
    protocol::PeerEndedEvent e;
    e.round = 3;
    e.rank = 1;
    e.kind = protocol::world::relaunch;
    e.exit_class = "oom";
    e.tier = "small";
    const EventText relaunch = describe_event(e);
    EXPECT_NE(relaunch.text.find("rank 1 ended its part of round 3 (oom)"), std::string::npos)
        << relaunch.text;
    EXPECT_NE(relaunch.text.find("every rank relaunches, at tier small or lower"),
              std::string::npos)
        << relaunch.text;
    e.kind = protocol::world::failed;
    e.detail = "data error";
    const EventText failed = describe_event(e);
    EXPECT_NE(failed.text.find("the job fails (data error)"), std::string::npos) << failed.text;
    EXPECT_EQ(failed.weight, EventWeight::alarm);
}

}  // namespace
}  // namespace smartcash::daemon
