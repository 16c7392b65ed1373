// The supervisor's state machine in a job with several ranks (docs/distributed.md): every launch
// waits for the round to form, every worker end is told to the other ranks, and what another
// rank tells ends this rank's part of the round. Events alone: no agent, no processes.
#include <gtest/gtest.h>

#include <csignal>

#include "common/exit_codes.hpp"
#include "common/world_messages.hpp"
#include "daemon/rules/decision.hpp"
#include "decision_harness.hpp"

namespace smartcash::daemon {
namespace {

using namespace decision_harness;
namespace world = protocol::world;

// Rank 1 of 2, its worker running in round 0 at tier `tier`.
Harness running_rank(int tier = 0) {
    Harness h;
    h.world_size = 2;
    h.rank = 1;
    h.feed(StartJob{});
    h.feed(WorldFormed{0, tier, {tier, tier}});
    h.started();
    return h;
}

PeerEnded peer(const std::string& kind, std::int64_t round = 0, int tier = 0) {
    PeerEnded e;
    e.round = round;
    e.rank = 0;
    e.kind = kind;
    e.exit_class = kind == world::relaunch ? "oom" : "";
    e.tier = tier;
    e.step = 12;
    return e;
}

TEST(WorldRules, ALaunchWaitsForTheRoundAndRunsAtTheLowestTierAnyRankAsked) {
    Harness h;
    h.world_size = 2;
    h.rank = 1;
    Decision start = h.feed(StartJob{});
    EXPECT_FALSE(first_of<Launch>(start)) << "no worker before every rank has joined";
    auto join = first_of<JoinWorld>(start);
    ASSERT_TRUE(join);
    EXPECT_EQ(join->tier, 0);
    EXPECT_EQ(h.state.phase, WorkerPhase::joining);
    EXPECT_TRUE(journaled(start, "world-join"));

    // Rank 0 asked for tier 1: this rank launches there too.
    Decision formed = h.feed(WorldFormed{3, 1, {1, 0}});
    auto launch = first_of<Launch>(formed);
    ASSERT_TRUE(launch);
    EXPECT_EQ(launch->tier, 1);
    EXPECT_EQ(h.state.tier, 1);
    EXPECT_EQ(h.state.world_round, 3);
    EXPECT_TRUE(journaled(formed, "world-formed"));
    EXPECT_TRUE(journaled(formed, "tier-move"));
}

TEST(WorldRules, ARoundOnATierTheConfigLacksFailsTheJob) {
    Harness h;
    h.world_size = 2;
    h.feed(StartJob{});
    Decision d = h.feed(WorldFormed{0, 7, {7, 0}});
    EXPECT_FALSE(first_of<Launch>(d));
    EXPECT_EQ(h.state.status, JobStatus::failed);
}

TEST(WorldRules, AnotherRanksMemoryFaultStopsThisWorkerAndEveryRankJoinsOneTierDown) {
    Harness h = running_rank(0);
    const int failures = h.state.failures_without_progress;
    Decision told = h.feed(peer(world::relaunch, 0, /*tier=*/1));
    EXPECT_TRUE(journaled(told, "peer-ended"));
    auto stop = first_of<SendCommand>(told);
    ASSERT_TRUE(stop);
    EXPECT_EQ(stop->cmd, "checkpoint_and_stop");
    EXPECT_EQ(stop->reason, "peer");

    Decision out = h.exit_code(exit_code::requested_stop);
    auto told_others = first_of<PublishEnd>(out);
    ASSERT_TRUE(told_others);
    EXPECT_EQ(told_others->kind, world::relaunch);
    EXPECT_EQ(told_others->tier, 0) << "this rank had no fault of its own";
    auto join = first_of<JoinWorld>(out);
    ASSERT_TRUE(join);
    EXPECT_EQ(join->tier, 0);
    EXPECT_FALSE(first_of<StartTimer>(out)) << "no backoff for a stop the other rank asked";
    EXPECT_EQ(h.state.failures_without_progress, failures);

    // The agent forms the round at the tier the faulty rank proposed.
    Decision formed = h.feed(WorldFormed{1, 1, {1, 0}});
    auto launch = first_of<Launch>(formed);
    ASSERT_TRUE(launch);
    EXPECT_EQ(launch->tier, 1);
}

// Where in a decision's actions the first of a kind is (-1: none).
template <class T>
int index_of(const Decision& d) {
    for (std::size_t i = 0; i < d.actions.size(); ++i)
        if (std::holds_alternative<T>(d.actions[i])) return static_cast<int>(i);
    return -1;
}

TEST(WorldRules, ThisRanksOomIsPublishedWithTheTierBelow) {
    Harness h = running_rank(0);
    Decision out = h.exit_code(exit_code::oom);
    // The agent applies a publish to the round it joined last: it must come first.
    EXPECT_LT(index_of<PublishEnd>(out), index_of<JoinWorld>(out));
    EXPECT_GE(index_of<PublishEnd>(out), 0);
    auto p = first_of<PublishEnd>(out);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->kind, world::relaunch);
    EXPECT_EQ(p->exit_class, "oom");
    EXPECT_EQ(p->tier, 1);
    auto join = first_of<JoinWorld>(out);
    ASSERT_TRUE(join);
    EXPECT_EQ(join->tier, 1);
    EXPECT_FALSE(first_of<Launch>(out));
}

TEST(WorldRules, ALostPeerIsNoFaultOfThisTierAndSpendsNoRetry) {
    Harness h = running_rank(0);
    const int failures = h.state.failures_without_progress;
    Decision out = h.exit_code(exit_code::peer_lost);
    const Json exit = journal_entry(out, "exit");
    EXPECT_EQ(exit.value("class", ""), "peer-lost");
    auto join = first_of<JoinWorld>(out);
    ASSERT_TRUE(join);
    EXPECT_EQ(join->tier, 0);
    EXPECT_EQ(h.state.failures_without_progress, failures);
    EXPECT_EQ(h.state.tier, 0);
}

TEST(WorldRules, AStopOnAnotherRankStopsThisOne) {
    Harness h = running_rank(0);
    Decision told = h.feed(peer(world::stop));
    auto stop = first_of<SendCommand>(told);
    ASSERT_TRUE(stop);
    EXPECT_EQ(stop->reason, "stop");
    Decision out = h.exit_code(exit_code::requested_stop);
    auto f = first_of<Finish>(out);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->status, JobStatus::stopped);
    EXPECT_FALSE(first_of<JoinWorld>(out));
}

TEST(WorldRules, AFailureOnAnotherRankFailsThisOneOnceItsWorkerIsOut) {
    Harness h = running_rank(0);
    Decision told = h.feed(peer(world::failed));
    EXPECT_TRUE(first_of<SendCommand>(told));
    EXPECT_EQ(h.state.status, JobStatus::running);
    Decision out = h.exit_code(exit_code::requested_stop);
    auto f = first_of<Finish>(out);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->status, JobStatus::failed);

    Harness waiting;
    waiting.world_size = 2;
    waiting.feed(StartJob{});
    Decision at_once = waiting.feed(peer(world::failed));
    auto g = first_of<Finish>(at_once);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->status, JobStatus::failed);
}

TEST(WorldRules, TheEndOfARoundThisRankHasLeftChangesNothing) {
    Harness h = running_rank(0);
    h.feed(WorldFormed{});  // not taken while running
    Decision old = h.feed(peer(world::relaunch, /*round=*/-5));
    EXPECT_FALSE(first_of<SendCommand>(old));
    EXPECT_EQ(h.state.phase, WorkerPhase::running);
}

TEST(WorldRules, AFinishedJobIsNotPublishedAndAFatalOneIsPublishedAsFailed) {
    Harness done = running_rank(0);
    Decision d = done.exit_code(exit_code::done);
    EXPECT_FALSE(first_of<PublishEnd>(d));
    EXPECT_TRUE(first_of<Finish>(d));

    Harness fatal = running_rank(0);
    Decision f = fatal.exit_code(exit_code::config_error);
    auto p = first_of<PublishEnd>(f);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->kind, world::failed);
}

TEST(WorldRules, ARankOutOfRetriesTellsTheOthersTheJobFailed) {
    Harness h = running_rank(0);
    Decision last;
    for (int i = 0; i < 3; ++i) {  // retry_budget: 3 crashes without progress
        last = h.killed(SIGSEGV);
        if (h.state.status == JobStatus::failed) break;
        EXPECT_EQ(first_of<PublishEnd>(last)->kind, world::relaunch);
        h.feed(TimerExpired{TimerKind::backoff});
        h.feed(WorldFormed{i + 1, 0, {0, 0}});
        h.started();
    }
    ASSERT_EQ(h.state.status, JobStatus::failed);
    auto p = first_of<PublishEnd>(last);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->kind, world::failed);
    EXPECT_FALSE(p->detail.empty());
}

TEST(WorldRules, PauseAndATierAboveAreRefusedWithSeveralRanks) {
    Harness h = running_rank(1);
    Decision pause = h.feed(ControlRequest{ControlCommand::pause, ""});
    EXPECT_FALSE(pause.ok);
    EXPECT_FALSE(first_of<SendCommand>(pause));
    Decision up = h.feed(ControlRequest{ControlCommand::tier, "accelerated"});
    EXPECT_FALSE(up.ok);
    Decision down = h.feed(ControlRequest{ControlCommand::tier, "minimal"});
    EXPECT_TRUE(down.ok);
    Decision out = h.exit_code(exit_code::requested_stop);
    auto p = first_of<PublishEnd>(out);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->tier, 2) << "the others follow this rank down";
}

TEST(WorldRules, ShutdownWhileWaitingForTheRoundEndsTheSupervisor) {
    Harness h;
    h.world_size = 2;
    h.feed(StartJob{});
    Decision d = h.feed(Shutdown{});
    auto f = first_of<Finish>(d);
    ASSERT_TRUE(f);
    EXPECT_EQ(f->status, JobStatus::stopped);
}

TEST(WorldRules, OneRankJobsNeverTalkToAnAgent) {
    Harness h;
    Decision d = h.start();
    EXPECT_FALSE(first_of<JoinWorld>(d));
    Decision out = h.exit_code(exit_code::oom);
    EXPECT_FALSE(first_of<PublishEnd>(out));
}

}  // namespace
}  // namespace smartcash::daemon
