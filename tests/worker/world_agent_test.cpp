// The world agent (`smartcash-worker world-agent`) as a supervisor sees it: real agent processes
// over loopback on a free port, spoken to through their report and command pipes with the typed
// messages of common/world_messages.hpp. Rounds form at the highest tier proposed; a published
// end reaches the other rank; a killed agent is reported lost; a rank that comes back joins the
// round the other waits in; bad input is logged, not fatal.
#include <functional>

#include "common/exit_codes.hpp"
#include "common/world_messages.hpp"
#include "worker/distributed/process_group.hpp"
#include "worker_process.hpp"

namespace {

using namespace worker_test;
namespace exit_code = smartcash::exit_code;
namespace world = smartcash::protocol::world;

class WorldAgent : public WorkerTest {
  protected:
    void SetUp() override {
        WorkerTest::SetUp();
        if (!smartcash::dist::c10d_available())
            GTEST_SKIP() << "this build has no c10d (the world agent's TCPStore)";
    }

    std::unique_ptr<WorkerProcess> agent(int rank, int world_size, int port,
                                         const std::vector<std::string>& extra = {}) {
        std::vector<std::string> args{"world-agent",
                                      "--rank",
                                      std::to_string(rank),
                                      "--world-size",
                                      std::to_string(world_size),
                                      "--master",
                                      "127.0.0.1:" + std::to_string(port)};
        args.insert(args.end(), extra.begin(), extra.end());
        return std::make_unique<WorkerProcess>(args, log_base("agent" + std::to_string(rank)));
    }
};

void send(WorkerProcess& w, const world::AgentCommand& command) {
    w.send_command(world::to_json(command));
}

world::Figures figures_of(const std::string& state, std::int64_t step) {
    world::Figures f;
    f.state = state;
    f.tier = "small";
    f.step = step;
    f.rss = 123456789;
    f.device = "cpu";
    return f;
}

/// Agents that play their supervisors: each live one gets Figures about three times a second
/// (as a supervisor sends them) while the test waits for their messages.
struct Supervisors {
    std::vector<WorkerProcess*> live;

    /// Waits until `done()` holds; false after `timeout_s`.
    bool until(const std::function<bool()>& done, double timeout_s) {
        const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
        auto next_figures = Clock::now();
        std::int64_t step = 0;
        while (Clock::now() < deadline) {
            if (Clock::now() >= next_figures) {
                for (auto* w : live)
                    if (w->running()) send(*w, figures_of("running", ++step));
                next_figures = Clock::now() + std::chrono::milliseconds(300);
            }
            for (auto* w : live) w->poll_reports(10);
            if (done()) return true;
        }
        return false;
    }

    /// The `n`-th (from 1) message of `type` from `w`, waited for.
    std::optional<Json> nth(WorkerProcess& w, const char* type, std::size_t n, double timeout_s) {
        if (!until([&] { return w.reports_of(type).size() >= n; }, timeout_s)) return std::nullopt;
        return w.reports_of(type)[n - 1];
    }
};

void expect_formed(const std::optional<Json>& formed, std::int64_t round, int tier,
                   const std::vector<int>& tiers, const std::string& who) {
    ASSERT_TRUE(formed) << who << ": no formed message";
    EXPECT_EQ(formed->value("round", std::int64_t{-1}), round) << who << " " << formed->dump();
    EXPECT_EQ(formed->value("tier", -1), tier) << who << " " << formed->dump();
    EXPECT_EQ(formed->value("tiers", std::vector<int>{}), tiers) << who << " " << formed->dump();
    EXPECT_EQ(formed->value("prefix", std::string()),
              "smartcash/r/" + std::to_string(round) + "/pg/")
        << who << " " << formed->dump();
}

// Two agents: a round forms at the highest tier proposed, with the same prefix on both; a
// published end reaches the other rank with its fields; the next round forms once both join it;
// a killed agent is reported lost within the lost-rank timeout; its successor joins the round
// the other waits in; when rank 0's supervisor leaves, its agent exits 0 and the other reports
// the lost store.
TEST_F(WorldAgent, RoundsFormEndsAreReportedAndALostRankIsNoticed) {
    const int port = free_port();
    const std::vector<std::string> lost_after{"--lost-after", "2", "--timeout", "60"};
    auto a0 = agent(0, 2, port, lost_after);
    auto a1 = agent(1, 2, port, lost_after);
    Supervisors s{{a0.get(), a1.get()}};

    const auto c0 = s.nth(*a0, world::Connected::name, 1, 60);
    const auto c1 = s.nth(*a1, world::Connected::name, 1, 60);
    ASSERT_TRUE(c0 && c1) << a0->err() << a1->err();
    EXPECT_TRUE(c0->value("serving", false));
    EXPECT_FALSE(c1->value("serving", true));
    EXPECT_EQ(c0->value("round", std::int64_t{-1}), 0);
    EXPECT_EQ(c1->value("round", std::int64_t{-1}), 0);
    EXPECT_EQ(c1->value("store", std::string()), "127.0.0.1:" + std::to_string(port));
    EXPECT_EQ(c1->value("world_size", 0), 2);

    // Round 0: rank 0 proposes tier 0, rank 1 tier 1; the round runs at tier 1.
    send(*a0, world::Join{0});
    ASSERT_TRUE(s.until(
        [&] {
            for (const auto& v : a0->reports_of(world::WorldView::name))
                if (v.value("waiting_for", std::vector<int>{}) == std::vector<int>{1}) return true;
            return false;
        },
        30))
        << "rank 0 never showed that it waits for rank 1\n"
        << a0->err();
    send(*a1, world::Join{1});
    expect_formed(s.nth(*a0, world::Formed::name, 1, 30), 0, 1, {0, 1}, "rank 0");
    expect_formed(s.nth(*a1, world::Formed::name, 1, 30), 0, 1, {0, 1}, "rank 1");

    // Each rank sees the other's figures.
    ASSERT_TRUE(s.until(
        [&] {
            const auto views = a0->reports_of(world::WorldView::name);
            if (views.empty()) return false;
            const auto ranks = views.back().value("ranks", Json::array());
            return ranks.size() == 2 && ranks[1].value("state", std::string()) == "running" &&
                   ranks[1].value("age_s", -1.0) >= 0 && ranks[1].value("age_s", -1.0) < 2;
        },
        10))
        << a0->reports_of(world::WorldView::name).back().dump();

    // Rank 1's worker ran out of memory: its supervisor publishes it.
    world::Publish oom;
    oom.kind = world::relaunch;
    oom.exit_class = "oom";
    oom.tier = 2;
    oom.step = 6;
    oom.detail = "out of memory at step 7";
    send(*a1, oom);
    const auto ended = s.nth(*a0, world::PeerEnded::name, 1, 30);
    ASSERT_TRUE(ended) << a0->err();
    EXPECT_EQ(ended->value("round", std::int64_t{-1}), 0);
    EXPECT_EQ(ended->value("rank", -1), 1);
    EXPECT_EQ(ended->value("kind", std::string()), world::relaunch);
    EXPECT_EQ(ended->value("exit_class", std::string()), "oom");
    EXPECT_EQ(ended->value("tier", -1), 2);
    EXPECT_EQ(ended->value("step", std::int64_t{-1}), 6);
    EXPECT_EQ(ended->value("detail", std::string()), "out of memory at step 7");

    // Both join the next round, rank 1 first.
    send(*a1, world::Join{2});
    world::Publish stopped;
    stopped.kind = world::relaunch;
    stopped.exit_class = "requested";
    stopped.tier = 2;
    stopped.step = 6;
    send(*a0, stopped);
    send(*a0, world::Join{2});
    expect_formed(s.nth(*a0, world::Formed::name, 2, 30), 1, 2, {2, 2}, "rank 0");
    expect_formed(s.nth(*a1, world::Formed::name, 2, 30), 1, 2, {2, 2}, "rank 1");
    // Rank 1 had left round 0 before rank 0 published its end there: nothing reached it.
    EXPECT_TRUE(a1->reports_of(world::PeerEnded::name).empty())
        << a1->reports_of(world::PeerEnded::name).front().dump();

    // Rank 1's machine vanishes while round 1 runs: rank 0 hears of it within the timeout. The
    // clock starts before the kill, so a slow reap on a busy machine cannot shorten the time
    // measured (the lower bound checks that the agent does not call a rank lost too early).
    const auto killed = Clock::now();
    a1->signal(SIGKILL);
    a1->wait(30);
    s.live = {a0.get()};
    const auto lost = s.nth(*a0, world::PeerEnded::name, 2, 30);
    const double after = seconds_since(killed);
    ASSERT_TRUE(lost) << a0->err();
    EXPECT_EQ(lost->value("round", std::int64_t{-1}), 1);
    EXPECT_EQ(lost->value("rank", -1), 1);
    EXPECT_EQ(lost->value("kind", std::string()), world::relaunch);
    EXPECT_EQ(lost->value("exit_class", std::string()), "lost");
    EXPECT_EQ(lost->value("tier", -1), 2);
    EXPECT_GE(after, 1.0) << lost->dump();
    EXPECT_LE(after, 6.0) << lost->dump();
    std::cout << "[ figures  ] rank 1 reported lost " << after << " s after it was killed\n";

    // Rank 0 goes on to round 2 and waits; rank 1 comes back and joins that round.
    world::Publish peer_lost;
    peer_lost.kind = world::relaunch;
    peer_lost.exit_class = "peer-lost";
    peer_lost.tier = 2;
    send(*a0, peer_lost);
    send(*a0, world::Join{2});
    auto b1 = agent(1, 2, port, lost_after);
    s.live = {a0.get(), b1.get()};
    const auto back = s.nth(*b1, world::Connected::name, 1, 60);
    ASSERT_TRUE(back) << b1->err();
    EXPECT_EQ(back->value("round", std::int64_t{-1}), 2) << back->dump();
    send(*b1, world::Join{2});
    expect_formed(s.nth(*a0, world::Formed::name, 3, 30), 2, 2, {2, 2}, "rank 0");
    expect_formed(s.nth(*b1, world::Formed::name, 1, 30), 2, 2, {2, 2}, "rank 1 again");

    // Rank 0's supervisor leaves: its agent exits 0, and the store it served is gone for rank 1.
    a0->close_commands();
    const auto s0 = a0->wait(30);
    EXPECT_TRUE(s0.exited && s0.code == exit_code::done) << s0.describe() << "\n" << a0->err();
    const auto s1 = b1->wait(60);
    EXPECT_TRUE(s1.exited && s1.code == exit_code::internal_error) << s1.describe() << "\n"
                                                                   << b1->err();
    const auto errors = b1->reports_of(world::AgentError::name);
    ASSERT_EQ(errors.size(), 1u) << b1->err();
    EXPECT_NE(errors[0].value("message", std::string()).find("127.0.0.1:" + std::to_string(port)),
              std::string::npos)
        << errors[0].dump();
}

// The workers of a round train through the store rank 0's agent serves, as clients with the
// round's prefix; the next round's workers use the same store with a prefix of their own (here
// they find the run finished, after the rendezvous and the agreements at start).
TEST_F(WorldAgent, WorkersOfEachRoundUseTheAgentsStoreUnderTheRoundsPrefix) {
    const int port = free_port();
    auto a0 = agent(0, 2, port, {"--timeout", "60"});
    auto a1 = agent(1, 2, port, {"--timeout", "60"});
    Supervisors s{{a0.get(), a1.get()}};
    const std::string run0 = run_dir("rank0"), run1 = run_dir("rank1");
    for (std::size_t round = 0; round < 2; ++round) {
        send(*a0, world::Join{1});
        send(*a1, world::Join{1});
        const auto formed = s.nth(*a0, world::Formed::name, round + 1, 60);
        ASSERT_TRUE(formed) << a0->err();
        ASSERT_TRUE(s.nth(*a1, world::Formed::name, round + 1, 60)) << a1->err();
        const std::string prefix = formed->value("prefix", std::string());
        EXPECT_EQ(prefix, "smartcash/r/" + std::to_string(round) + "/pg/");
        std::vector<std::unique_ptr<WorkerProcess>> workers;
        for (int r = 0; r < 2; ++r) {
            LaunchOptions options;
            options.env = {"WORLD_SIZE=2",
                           "RANK=" + std::to_string(r),
                           "MASTER_ADDR=127.0.0.1",
                           "MASTER_PORT=" + std::to_string(port),
                           "SMARTCASH_DIST_TIMEOUT=60",
                           "SMARTCASH_STORE_PREFIX=" + prefix};
            options.channel = false;
            workers.push_back(
                train(r == 0 ? run0 : run1, "small", options, fixture("tiny_dist.yaml")));
        }
        for (auto& w : workers) {
            ASSERT_TRUE(s.until([&] { return !w->running(); }, 300)) << w->err();
            const auto status = w->wait(10);
            EXPECT_TRUE(status.exited && status.code == exit_code::done)
                << status.describe() << "\n"
                << w->err();
        }
        for (auto* a : {a0.get(), a1.get()}) {
            world::Publish done;
            done.kind = world::relaunch;
            done.exit_class = "done";
            send(*a, done);
        }
    }
    EXPECT_EQ(final_hash(run0).second, 16);
    EXPECT_EQ(final_hash(run0), final_hash(run1));
}

// A rank that publishes a stop while the round is still forming: the other hears of it, nobody
// forms that round, and both meet in the next one.
TEST_F(WorldAgent, ARoundThatEndsBeforeItFormsIsSkipped) {
    const int port = free_port();
    auto a0 = agent(0, 2, port, {"--timeout", "60"});
    auto a1 = agent(1, 2, port, {"--timeout", "60"});
    Supervisors s{{a0.get(), a1.get()}};
    ASSERT_TRUE(s.nth(*a0, world::Connected::name, 1, 60)) << a0->err();
    ASSERT_TRUE(s.nth(*a1, world::Connected::name, 1, 60)) << a1->err();
    send(*a1, world::Join{0});
    world::Publish stop;
    stop.kind = world::stop;
    stop.step = 4;
    send(*a1, stop);
    // Rank 0 joins only once the stop is in the store, or the round might form before it.
    ASSERT_TRUE(s.until(
        [&] { return a1->err().find("published the end of round 0") != std::string::npos; }, 30))
        << a1->err();
    send(*a0, world::Join{1});
    const auto ended = s.nth(*a0, world::PeerEnded::name, 1, 30);
    ASSERT_TRUE(ended) << a0->err();
    EXPECT_EQ(ended->value("round", std::int64_t{-1}), 0);
    EXPECT_EQ(ended->value("kind", std::string()), world::stop);
    EXPECT_EQ(ended->value("step", std::int64_t{-1}), 4);
    send(*a1, world::Join{0});
    expect_formed(s.nth(*a0, world::Formed::name, 1, 30), 1, 1, {1, 0}, "rank 0");
    expect_formed(s.nth(*a1, world::Formed::name, 1, 30), 1, 1, {1, 0}, "rank 1");
}

// Lines that are not commands are logged and skipped; the agent goes on. A bad command line
// (arguments) is a usage error; a client that cannot reach the store gives up after --timeout
// with an agent_error.
TEST_F(WorldAgent, BadInputIsLoggedNotFatal) {
    const int port = free_port();
    auto a = agent(0, 1, port);
    Supervisors s{{a.get()}};
    ASSERT_TRUE(s.nth(*a, world::Connected::name, 1, 60)) << a->err();
    a->send_command(Json("not an object"));
    a->send_command(Json{{"cmd", "no-such-command"}});
    a->send_command(Json{{"cmd", "join"}, {"tier", "not a number"}});
    expect_formed(s.nth(*a, world::Formed::name, 1, 30), 0, 0, {0}, "rank 0");
    EXPECT_TRUE(a->running()) << a->err();
    EXPECT_GE(count_of(a->err(), "ignoring a command from the supervisor"), 2) << a->err();
    a->close_commands();
    const auto status = a->wait(30);
    EXPECT_TRUE(status.exited && status.code == exit_code::done) << status.describe();

    const std::vector<std::vector<std::string>> bad = {
        {"--rank", "2", "--world-size", "2", "--master", "127.0.0.1:29500"},
        {"--rank", "0", "--world-size", "2", "--master", "127.0.0.1"},
        {"--rank", "0", "--world-size", "2", "--master", "127.0.0.1:70000"},
        {"--rank", "0", "--world-size", "2"},
        {"--rank", "0", "--world-size", "2", "--master", "127.0.0.1:29500", "--lost-after", "0"},
        {"--rank", "x", "--world-size", "2", "--master", "127.0.0.1:29500"},
    };
    for (const auto& args : bad) {
        std::vector<std::string> all{"world-agent"};
        all.insert(all.end(), args.begin(), args.end());
        WorkerProcess p(all, log_base("bad"));
        const auto st = p.wait(30);
        EXPECT_TRUE(st.exited && st.code == exit_code::usage) << st.describe() << "\n" << p.err();
        EXPECT_EQ(p.err().rfind("smartcash-worker: ", 0), 0u) << p.err();
    }

    auto lonely = agent(1, 2, free_port(), {"--timeout", "1"});
    const auto st = lonely->wait(60);
    EXPECT_TRUE(st.exited && st.code == exit_code::internal_error) << st.describe() << "\n"
                                                                   << lonely->err();
    const auto errors = lonely->reports_of(world::AgentError::name);
    ASSERT_EQ(errors.size(), 1u) << lonely->err();
    EXPECT_NE(errors[0].value("message", std::string()).find("cannot reach the store"),
              std::string::npos)
        << errors[0].dump();
}

}  // namespace
