// Two ranks of a data-parallel job on one machine: two smartcashd over loopback, each with its own
// run directory and the real worker (docs/distributed.md). A rank's worker killed, and a memory
// fault on one rank, caused for real; what both supervisors did is read from their journals,
// and the training itself from the workers' metrics and checkpoints.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "common/run_dir.hpp"
#include "tests/integration/harness.hpp"

namespace smartcash::integration {
namespace {

// A TCP port free on loopback right now, for rank 0's store.
int free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        if (fd >= 0) ::close(fd);
        return 0;
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

// The two supervisors of one job, started together.
struct TwoRanks {
    // `launchers` (one per rank) go before smartcashd, as Daemon takes them; `master` is the
    // address of rank 0 as the others reach it.
    TwoRanks(const std::string& name, const std::string& config0, const std::string& config1,
             const std::string& worker1 = SMARTCASH_WORKER_PATH,
             const std::string& master = "127.0.0.1",
             const std::vector<std::vector<std::string>>& launchers = {{}, {}},
             const std::string& lost_after = "20")
        : s0(name + "-rank0"),
          s1(name + "-rank1"),
          port(free_port()),
          master(master),
          lost_after(lost_after) {
        d0 =
            std::make_unique<Daemon>(s0, config0, SMARTCASH_WORKER_PATH, "", args(0), launchers[0]);
        d1 = std::make_unique<Daemon>(s1, config1, worker1, "", args(1), launchers[1]);
    }
    std::vector<std::string> args(int rank) const {
        return {"--nnodes",           "2",        "--node-rank",
                std::to_string(rank), "--master", master + ":" + std::to_string(port),
                "--lost-after",       lost_after};
    }
    // Both exit 0; the failure message has both stderr texts.
    void expect_both_done() {
        const int a = d0->wait(job_timeout);
        const int b = d1->wait(job_timeout);
        EXPECT_EQ(a, 0) << "rank 0:\n" << d0->stderr_text() << "\nrank 1:\n" << d1->stderr_text();
        EXPECT_EQ(b, 0) << "rank 1:\n" << d1->stderr_text() << "\nrank 0:\n" << d0->stderr_text();
    }
    Scratch s0, s1;
    int port;
    std::string master;
    std::string lost_after;
    std::unique_ptr<Daemon> d0, d1;
};

// The loss of each step as the worker last recorded it (a step trained again after a resume
// replaces the earlier record).
std::map<std::int64_t, double> step_losses(const Scratch& s) {
    std::map<std::int64_t, double> out;
    std::ifstream in(run_dir::metrics(s.run()));
    std::string line;
    while (std::getline(in, line)) {
        const Json j = Json::parse(line, nullptr, false);
        if (j.is_object() && j.value("type", "") == "step")
            out[j.value("step", std::int64_t{-1})] = j.value("loss", -1.0);
    }
    return out;
}

void expect_finished(const Scratch& s, const std::string& tier) {
    const Json st = state_json(s);
    EXPECT_EQ(st.value("status", ""), "done") << st.dump(2);
    const Json info = checkpoint_info(newest_checkpoint(s));
    EXPECT_TRUE(info.value("valid", false)) << info.dump(2);
    EXPECT_TRUE(info.value("finished", false)) << info.dump(2);
    EXPECT_EQ(info.value("world_size", 0), 2) << info.dump(2);
    EXPECT_EQ(info.value("tier", ""), tier) << info.dump(2);
}

// rank 1's worker stand-in: the first `train` launch gets SMARTCASH_TEST_FREEZE_AT_STEP, so
// that rank stops itself (SIGSTOP) at a known step boundary; later launches train normally.
std::string freeze_once_wrapper(const Scratch& s, int step) {
    const std::string path = s.file("freeze-once.sh");
    std::ofstream(path) << "#!/bin/sh\n"
                        << "if [ \"$1\" = train ] && [ ! -e '" << s.file("froze") << "' ]; then\n"
                        << "  : > '" << s.file("froze") << "'\n"
                        << "  SMARTCASH_TEST_FREEZE_AT_STEP=" << step << "; export "
                        << "SMARTCASH_TEST_FREEZE_AT_STEP\n"
                        << "fi\n"
                        << "exec '" << SMARTCASH_WORKER_PATH << "' \"$@\"\n";
    ::chmod(path.c_str(), 0755);
    return path;
}

TEST(IntegrationWorld, AKilledRankMakesBothRelaunchFromOneCheckpointAndTheWeightsEndTheSame) {
    std::map<std::int64_t, double> reference;
    {
        TwoRanks ref("world-reference", fixture("world.yaml"), fixture("world.yaml"));
        ref.expect_both_done();
        reference = step_losses(ref.s0);
        ASSERT_EQ(reference.size(), 16u) << "8 steps in each of 2 epochs";
        const auto other = step_losses(ref.s1);
        for (const auto& [step, loss] : reference)
            EXPECT_DOUBLE_EQ(other.at(step), loss) << "both ranks report the global loss";
        EXPECT_EQ(events_named(ref.s0, "launch").size(), 1u) << dump(events(ref.s0));
        expect_finished(ref.s0, "big");
    }

    constexpr int frozen_at = 4;  // a checkpoint step (checkpoint_every_steps: 2)
    Scratch wrapper_dir("world-kill-wrapper");
    TwoRanks w("world-kill", fixture("world.yaml"), fixture("world.yaml"),
               freeze_once_wrapper(wrapper_dir, frozen_at));
    // Rank 1's worker stops itself at the boundary after step 4, whose checkpoint it has
    // written (its report may still wait in the stopped worker's queue); rank 0's waits for it
    // in the boundary's collective.
    const std::string log1 = run_dir::logs(w.s1.run()) + "/worker-1.log";
    const std::string frozen_line = "test hook: frozen at step " + std::to_string(frozen_at);
    const auto deadline = std::chrono::steady_clock::now() + job_timeout;
    while (slurp(log1).find(frozen_line) == std::string::npos &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    ASSERT_NE(slurp(log1).find(frozen_line), std::string::npos) << w.d1->stderr_text();
    int pid = 0;
    for (const auto& e : events_named(w.s1, "worker-started")) pid = e.value("pid", 0);
    ASSERT_GT(pid, 0);

    // Rank 0's smartcashctl shows both ranks, as its world agent sees them.
    Json world;
    for (int i = 0; i < 150; ++i) {
        std::string out;
        run_program({SMARTCASHCTL_PATH, "--run-dir", w.s0.run(), "status", "--json"}, &out);
        const Json status = Json::parse(out, nullptr, false);
        if (status.is_object() && status.contains("world") && status["world"].is_object()) {
            world = status["world"];
            const auto& ranks = world["ranks"];
            if (ranks.is_array() && ranks.size() == 2 &&
                ranks[1].value("step", std::int64_t{-1}) >= 2 && ranks[0].value("age_s", -1.0) >= 0)
                break;
        }
        std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(world.is_object()) << "no world in rank 0's status";
    EXPECT_EQ(world.value("rank", -1), 0) << world.dump(2);
    EXPECT_EQ(world.value("world_size", 0), 2) << world.dump(2);
    ASSERT_EQ(world["ranks"].size(), 2u) << world.dump(2);
    EXPECT_EQ(world["ranks"][1].value("state", ""), "running") << world.dump(2);
    EXPECT_EQ(world["ranks"][1].value("tier", ""), "big") << world.dump(2);
    // The step its supervisor last heard of: a checkpoint (every 2 steps) up to the frozen one.
    EXPECT_GE(world["ranks"][1].value("step", std::int64_t{-1}), 2) << world.dump(2);
    EXPECT_LE(world["ranks"][1].value("step", std::int64_t{-1}), frozen_at) << world.dump(2);
    EXPECT_GT(world["ranks"][1].value("rss", std::uint64_t{0}), 0u) << world.dump(2);
    std::string text;
    run_program({SMARTCASHCTL_PATH, "--run-dir", w.s0.run(), "status"}, &text);
    EXPECT_NE(text.find("world:      rank 0 of 2"), std::string::npos) << text;
    EXPECT_NE(text.find("  rank 1: running, tier big"), std::string::npos) << text;

    ASSERT_EQ(::kill(pid, SIGKILL), 0);
    w.expect_both_done();
    const auto all0 = events(w.s0);
    const auto all1 = events(w.s1);

    // Rank 1 saw its worker die; rank 0 heard of it and its worker lost the collective.
    const auto exits1 = events_named(w.s1, "exit");
    ASSERT_EQ(exits1.size(), 2u) << dump(all1);
    EXPECT_EQ(exits1[0].value("class", ""), "crash");
    EXPECT_EQ(exits1[0].value("signal", 0), SIGKILL);
    const auto exits0 = events_named(w.s0, "exit");
    ASSERT_EQ(exits0.size(), 2u) << dump(all0);
    const std::string class0 = exits0[0].value("class", "");
    EXPECT_TRUE(class0 == "peer-lost" || class0 == "requested") << dump(all0);
    const auto heard = events_named(w.s0, "peer-ended");
    ASSERT_FALSE(heard.empty()) << dump(all0);
    EXPECT_EQ(heard[0].value("rank", -1), 1) << dump(heard);
    EXPECT_EQ(events_named(w.s0, "world-formed").size(), 2u) << dump(all0);
    EXPECT_EQ(events_named(w.s1, "world-formed").size(), 2u) << dump(all1);
    EXPECT_TRUE(events_named(w.s0, "tier-move").empty()) << dump(all0);

    // Both resumed from the same checkpoint: the step rank 1 froze at, nothing lost.
    const auto hello0 = events_named(w.s0, "hello");
    const auto hello1 = events_named(w.s1, "hello");
    ASSERT_EQ(hello0.size(), 2u) << dump(all0);
    ASSERT_EQ(hello1.size(), 2u) << dump(all1);
    EXPECT_EQ(step_of(hello0[1], "resumed_step"), frozen_at) << dump(all0);
    EXPECT_EQ(step_of(hello1[1], "resumed_step"), frozen_at) << dump(all1);

    // The same training as the uninterrupted job: every step's global loss, to float rounding.
    const auto losses = step_losses(w.s0);
    ASSERT_EQ(losses.size(), reference.size());
    for (const auto& [step, loss] : reference)
        EXPECT_NEAR(losses.at(step), loss, 1e-5 * std::abs(loss)) << "step " << step;
    expect_finished(w.s0, "big");
    expect_finished(w.s1, "big");
}

TEST(IntegrationWorld, AMemoryFaultOnOneRankMovesBothDownTogetherWithNoStepLost) {
    // Rank 1's config: at big, 1200 MiB more in its worker's process tree from step 4 (the
    // ballast helper) crosses the soft limit (0.6 x 2 GiB); rank 0's has no fault at all.
    Scratch config_dir("world-memory-config");
    const std::string config1 = config_dir.file("world-rank1.yaml");
    {
        std::string text = slurp(fixture("world.yaml"));
        auto replace = [&](const std::string& from, const std::string& to) {
            const auto at = text.find(from);
            ASSERT_NE(at, std::string::npos) << from;
            text.replace(at, from.size(), to);
        };
        replace("micro_batch: 2, threads: 1, memory_limit: 4GiB}",
                "micro_batch: 2, threads: 1, memory_limit: 2GiB, "
                "env: {SMARTCASH_TEST_BALLAST: \"4:1200\"}}");
        replace("soft_limit_fraction: 0.85", "soft_limit_fraction: 0.6");
        std::ofstream(config1) << text;
    }
    TwoRanks w("world-memory", fixture("world.yaml"), config1, config_dir.ballast_wrapper());
    w.expect_both_done();
    const auto all0 = events(w.s0);
    const auto all1 = events(w.s1);

    ASSERT_EQ(events_named(w.s1, "soft-limit").size(), 1u) << dump(all1);
    EXPECT_TRUE(events_named(w.s0, "soft-limit").empty()) << dump(all0);
    const auto exits1 = events_named(w.s1, "exit");
    ASSERT_EQ(exits1.size(), 2u) << dump(all1);
    EXPECT_EQ(exits1[0].value("stop_reason", ""), "memory") << dump(all1);
    const auto exits0 = events_named(w.s0, "exit");
    ASSERT_EQ(exits0.size(), 2u) << dump(all0);
    EXPECT_EQ(exits0[0].value("class", ""), "requested") << dump(all0);

    // Both stopped after the same step, with a checkpoint of it, and moved down one tier
    // together: both resume there, and no step both ranks finished is lost.
    std::int64_t stop_step = -1;
    for (const auto& c : events_named(w.s1, "checkpoint"))
        if (c.value("kind", "") == "stop") stop_step = step_of(c);
    ASSERT_GE(stop_step, 4) << dump(all1);
    for (const Scratch* s : {&w.s0, &w.s1}) {
        const auto all = events(*s);
        const auto moves = events_named(*s, "tier-move");
        ASSERT_EQ(moves.size(), 1u) << dump(all);
        EXPECT_EQ(moves[0].value("from", ""), "big");
        EXPECT_EQ(moves[0].value("to", ""), "small");
        const auto hellos = events_named(*s, "hello");
        ASSERT_EQ(hellos.size(), 2u) << dump(all);
        EXPECT_EQ(hellos[1].value("tier", ""), "small");
        EXPECT_EQ(step_of(hellos[1], "resumed_step"), stop_step) << dump(all);
        EXPECT_EQ(last_step_at_tier(*s, "big"), stop_step) << dump(all);
        expect_finished(*s, "small");
    }
    EXPECT_EQ(events_named(w.s0, "tier-move")[0].value("reason", ""), "another rank");
    EXPECT_EQ(events_named(w.s1, "tier-move")[0].value("reason", ""), "soft-limit");
    const auto formed = events_named(w.s0, "world-formed");
    ASSERT_EQ(formed.size(), 2u) << dump(all0);
    EXPECT_EQ(formed[1].value("tier", ""), "small") << dump(formed);
}

// A whole machine that stops answering: rank 1's supervisor, world agent and worker are all
// stopped (SIGSTOP), as a machine that hangs or leaves the network. Rank 0 hears nothing of it
// for --lost-after seconds, stops its own worker (stuck in a collective, so killed after its
// stop timeout) and waits for rank 1 in the next round; once rank 1 is continued the job goes on
// from the newest checkpoint both ranks have and finishes.
TEST(IntegrationWorld, ARankThatStopsAnsweringIsLostAndTheJobGoesOnWhenItIsBack) {
    // Both ranks give up on a worker stuck in a collective sooner than the fixture would.
    Scratch config_dir("world-lost-config");
    const std::string config = config_dir.file("world-lost.yaml");
    {
        std::string text = slurp(fixture("world.yaml"));
        for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
                 {"heartbeat_timeout: 60s", "heartbeat_timeout: 10s"},
                 {"stop_grace: 10s", "stop_grace: 2s"}}) {
            const auto at = text.find(from);
            ASSERT_NE(at, std::string::npos) << from;
            text.replace(at, from.size(), to);
        }
        std::ofstream(config) << text;
    }
    TwoRanks w("world-lost", config, config, SMARTCASH_WORKER_PATH, "127.0.0.1", {{}, {}},
               /*lost_after=*/"3");
    ASSERT_TRUE(w.d1->wait_for_event(
        [](const Json& e) { return e.value("event", "") == "checkpoint" && step_of(e) >= 4; },
        job_timeout))
        << w.d1->stderr_text();
    int worker1 = 0;
    for (const auto& e : events_named(w.s1, "worker-started")) worker1 = e.value("pid", 0);
    const auto agents = processes_mentioning(
        "world-agent --rank 1 --world-size 2 --master 127.0.0.1:" + std::to_string(w.port));
    ASSERT_EQ(agents.size(), 1u);
    const std::vector<int> machine{w.d1->pid(), agents[0], worker1};
    for (int pid : machine) ASSERT_EQ(::kill(pid, SIGSTOP), 0) << pid;
    const auto stopped = std::chrono::steady_clock::now();

    // Rank 0 notices, ends its worker and waits in the next round.
    bool heard = false;
    bool ended = false;
    const bool rejoined = w.d0->wait_for_event(
        [&](const Json& e) {
            const std::string name = e.value("event", "");
            if (name == "peer-ended" && e.value("rank", -1) == 1 &&
                e.value("exit_class", "") == "lost")
                heard = true;
            if (name == "exit") ended = true;
            return ended && name == "world-join";
        },
        60s);
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - stopped).count();
    for (int pid : machine) ::kill(pid, SIGCONT);
    ASSERT_TRUE(rejoined) << dump(events(w.s0));
    EXPECT_TRUE(heard) << dump(events(w.s0));
    std::cout << "[ figures  ] rank 0 waited for the lost rank in the next round " << took
              << " s after it stopped answering\n";

    w.expect_both_done();
    const auto hello0 = events_named(w.s0, "hello");
    const auto hello1 = events_named(w.s1, "hello");
    ASSERT_GE(hello0.size(), 2u) << dump(events(w.s0));
    ASSERT_GE(hello1.size(), 2u) << dump(events(w.s1));
    EXPECT_EQ(step_of(hello0.back(), "resumed_step"), step_of(hello1.back(), "resumed_step"));
    EXPECT_GE(step_of(hello0.back(), "resumed_step"), 4);
    expect_finished(w.s0, "big");
    expect_finished(w.s1, "big");
}

// Runs argv; its exit status (-1 when it did not exit) and all it printed, stdout and stderr,
// without the trailing blank.
int run_with_output(const std::vector<std::string>& argv, std::string* output) {
    output->clear();
    const int status = run_program(argv, output, /*with_stderr=*/true);
    while (!output->empty() && (output->back() == '\n' || output->back() == ' '))
        output->pop_back();
    return status;
}

// Two network namespaces joined by a veth pair, made by the test and removed after it: each rank
// has its own network stack, so the store, the rendezvous and every all-reduce cross a network
// interface. Needs root (CAP_NET_ADMIN) and `ip`. Where they are missing, or the system refuses
// (a container without the capability), skip_reason() says so, quoting ip; a set-up that fails
// for another reason is an error(), naming the command and what ip said. Whatever was made is
// removed again, also after a set-up that failed half-way.
class NetworkPair {
  public:
    static std::string default_tag() { return std::to_string(::getpid() % 100000); }
    static constexpr const char* default_subnet = "10.231.77.";
    static std::string find_ip() {
        for (const char* candidate : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
            if (::access(candidate, X_OK) == 0) return candidate;
        return "";
    }

    explicit NetworkPair(const std::string& tag = default_tag(),
                         const std::string& subnet = default_subnet, const std::string& ip = "")
        : m_ip(ip.empty() ? find_ip() : ip) {
        if (m_ip.empty()) {
            m_skip = "needs iproute2's ip (none in /usr/sbin, /sbin, /usr/bin or /bin)";
            return;
        }
        if (::geteuid() != 0) {
            m_skip = "needs root to make network namespaces (running as uid " +
                     std::to_string(::geteuid()) + ")";
            return;
        }
        m_ns = {"scw0-" + tag, "scw1-" + tag};
        m_if = {"scv0-" + tag, "scv1-" + tag};
        m_ready = make(subnet);
        if (!m_ready) remove();
    }
    ~NetworkPair() { remove(); }
    NetworkPair(const NetworkPair&) = delete;
    NetworkPair& operator=(const NetworkPair&) = delete;

    bool ready() const { return m_ready; }
    /// Why this environment cannot have the pair ("" when it can).
    const std::string& skip_reason() const { return m_skip; }
    /// The set-up's failure otherwise: the command and what ip said ("" when none).
    const std::string& error() const { return m_error; }

    static std::string address(int rank) { return default_subnet + std::to_string(rank + 1); }
    // Runs the rest in rank's namespace, with Gloo on its end of the pair.
    std::vector<std::string> launcher(int rank) const {
        const auto r = static_cast<std::size_t>(rank);
        return {m_ip, "netns", "exec", m_ns[r], "/usr/bin/env", "GLOO_SOCKET_IFNAME=" + m_if[r]};
    }
    // Bytes sent out of rank's end of the pair.
    std::uint64_t sent(int rank) const {
        const auto r = static_cast<std::size_t>(rank);
        std::string out;
        run_program({m_ip, "-n", m_ns[r], "-j", "-s", "link", "show", m_if[r]}, &out);
        const Json j = Json::parse(out, nullptr, false);
        if (!j.is_array() || j.empty() || !j[0].contains("stats64")) return 0;
        return j[0]["stats64"].value("tx", Json::object()).value("bytes", std::uint64_t{0});
    }

  private:
    bool make(const std::string& subnet) {
        for (const std::string& ns : m_ns) {
            if (!ip({"netns", "add", ns})) return false;
            m_made_ns.push_back(ns);
        }
        if (!ip({"link", "add", m_if[0], "type", "veth", "peer", "name", m_if[1]})) return false;
        m_made_veth = true;
        for (std::size_t r = 0; r < 2; ++r)
            if (!ip({"link", "set", m_if[r], "netns", m_ns[r]}) ||
                !ip({"-n", m_ns[r], "addr", "add", subnet + std::to_string(r + 1) + "/24", "dev",
                     m_if[r]}) ||
                !ip({"-n", m_ns[r], "link", "set", m_if[r], "up"}) ||
                !ip({"-n", m_ns[r], "link", "set", "lo", "up"}))
                return false;
        return true;
    }

    // Removes what make() made. The veth pair goes first, by one of its ends wherever that is
    // (the root namespace or either of ours): a removed namespace takes its links only later, in
    // the kernel's own time, and one never moved into a namespace would stay.
    void remove() {
        std::string problems;
        if (m_made_veth) {
            std::vector<std::string> places{""};
            places.insert(places.end(), m_made_ns.begin(), m_made_ns.end());
            bool removed = false;
            for (std::size_t r = 0; r < 2 && !removed; ++r)
                for (const std::string& ns : places) {
                    std::vector<std::string> argv{m_ip};
                    if (!ns.empty()) argv.insert(argv.end(), {"-n", ns});
                    argv.insert(argv.end(), {"link", "del", m_if[r]});
                    std::string out;
                    if (run_with_output(argv, &out) == 0) {
                        removed = true;
                        break;
                    }
                }
            if (!removed)
                problems += "the veth pair " + m_if[0] + "/" + m_if[1] + " was not found; ";
            m_made_veth = false;
        }
        for (const std::string& ns : m_made_ns) {
            std::string out;
            if (run_with_output({m_ip, "netns", "del", ns}, &out) != 0)
                problems += "`ip netns del " + ns + "`: " + out + "; ";
        }
        m_made_ns.clear();
        if (!problems.empty()) ADD_FAILURE() << "cleaning up the network pair: " << problems;
    }

    // One ip command of the set-up; on failure, records it as the environment's refusal or as
    // the set-up's error.
    bool ip(const std::vector<std::string>& args) {
        std::vector<std::string> argv{m_ip};
        argv.insert(argv.end(), args.begin(), args.end());
        std::string out;
        const int status = run_with_output(argv, &out);
        if (status == 0) return true;
        std::string command = "ip";
        for (const auto& a : args) command += " " + a;
        const std::string what =
            "`" + command + "` failed (exit " + std::to_string(status) + "): " + out;
        // What a kernel or container that forbids namespaces or veth devices answers.
        bool forbidden = false;
        for (const char* refusal :
             {"Operation not permitted", "Permission denied", "Read-only file system",
              "Unknown device type", "Operation not supported"})
            forbidden = forbidden || out.find(refusal) != std::string::npos;
        if (forbidden)
            m_skip = "this system does not let the test make a network namespace pair: " + what;
        else
            m_error = what;
        return false;
    }

    std::string m_ip;
    std::vector<std::string> m_ns, m_if;
    std::vector<std::string> m_made_ns;
    bool m_made_veth = false;
    bool m_ready = false;
    std::string m_skip, m_error;
};

// What is left in the root namespace of the namespaces and links named with `tag`.
std::string leftovers(const std::string& tag) {
    std::string found;
    for (const std::string& name : {"scw0-" + tag, "scw1-" + tag})
        if (std::filesystem::exists("/run/netns/" + name)) found += "netns " + name + "; ";
    for (const std::string& name : {"scv0-" + tag, "scv1-" + tag})
        if (std::filesystem::exists("/sys/class/net/" + name)) found += "link " + name + "; ";
    return found;
}

// Runs the real `ip`, except that the command containing `fail_on` prints `message` and fails.
std::string failing_ip(const Scratch& s, const std::string& fail_on, const std::string& message) {
    const std::string path = s.file("ip");
    std::ofstream(path) << "#!/bin/sh\n"
                        << "case \"$*\" in *'" << fail_on << "'*) echo '" << message
                        << "' >&2; exit 2;; esac\n"
                        << "exec '" << NetworkPair::find_ip() << "' \"$@\"\n";
    ::chmod(path.c_str(), 0755);
    return path;
}

// Whether a network namespace pair can be made here at all (else why not).
bool can_make_namespaces_here(std::string* why) {
    NetworkPair probe("p" + NetworkPair::default_tag());
    *why = probe.skip_reason();
    return why->empty();
}

// A set-up that fails half-way, after the veth pair was made and moved into the namespaces (an
// address ip refuses): not ready, the failed command and ip's own message named, and nothing
// left behind.
TEST(IntegrationWorld, ANetworkPairThatFailsHalfWayNamesTheCommandAndLeavesNothing) {
    std::string why;
    if (!can_make_namespaces_here(&why)) GTEST_SKIP() << why;
    const std::string tag = "h" + NetworkPair::default_tag();
    {
        NetworkPair net(tag, "10.231.777.");
        EXPECT_FALSE(net.ready());
        EXPECT_EQ(net.skip_reason(), "") << "a failed set-up is not the environment's refusal";
        EXPECT_NE(net.error().find("addr add 10.231.777.1/24"), std::string::npos) << net.error();
        EXPECT_NE(net.error().find("10.231.777.1"), std::string::npos) << net.error();
    }
    EXPECT_EQ(leftovers(tag), "");
}

// The veth pair made but not moved into the namespaces: it lives in the root namespace, where
// removing the namespaces does not take it; it is removed all the same.
TEST(IntegrationWorld, AVethPairLeftInTheRootNamespaceIsRemoved) {
    std::string why;
    if (!can_make_namespaces_here(&why)) GTEST_SKIP() << why;
    Scratch s("world-veth-left");
    const std::string tag = "v" + NetworkPair::default_tag();
    {
        NetworkPair net(tag, "10.231.77.",
                        failing_ip(s, "link set scv0-" + tag + " netns",
                                   "RTNETLINK answers: Invalid argument"));
        EXPECT_FALSE(net.ready());
        EXPECT_EQ(net.skip_reason(), "");
        EXPECT_NE(net.error().find("link set scv0-" + tag + " netns scw0-" + tag),
                  std::string::npos)
            << net.error();
        EXPECT_NE(net.error().find("RTNETLINK answers: Invalid argument"), std::string::npos)
            << net.error();
    }
    EXPECT_EQ(leftovers(tag), "");
}

// The system refuses namespaces (a container without CAP_SYS_ADMIN): a skip that quotes ip,
// not a failure, and nothing left behind.
TEST(IntegrationWorld, ANetworkPairTheSystemForbidsIsASkipWithItsError) {
    std::string why;
    if (!can_make_namespaces_here(&why)) GTEST_SKIP() << why;
    Scratch s("world-netns-forbidden");
    const std::string tag = "f" + NetworkPair::default_tag();
    const std::string refusal = "mount --make-shared /run/netns failed: Operation not permitted";
    {
        NetworkPair net(tag, "10.231.77.", failing_ip(s, "netns add scw1-" + tag, refusal));
        EXPECT_FALSE(net.ready());
        EXPECT_NE(net.skip_reason().find(refusal), std::string::npos) << net.skip_reason();
        EXPECT_NE(net.skip_reason().find("netns add scw1-" + tag), std::string::npos)
            << net.skip_reason();
    }
    EXPECT_EQ(leftovers(tag), "");
}

TEST(IntegrationWorld, TwoRanksInTwoNetworkNamespacesTrainOverAVethPair) {
    NetworkPair net;
    if (!net.skip_reason().empty()) GTEST_SKIP() << net.skip_reason();
    ASSERT_TRUE(net.ready()) << net.error();
    TwoRanks w("world-netns", fixture("world.yaml"), fixture("world.yaml"), SMARTCASH_WORKER_PATH,
               NetworkPair::address(0), {net.launcher(0), net.launcher(1)});
    w.expect_both_done();
    expect_finished(w.s0, "big");
    expect_finished(w.s1, "big");
    const auto losses0 = step_losses(w.s0);
    const auto losses1 = step_losses(w.s1);
    ASSERT_EQ(losses0.size(), 16u);
    for (const auto& [step, loss] : losses0)
        EXPECT_DOUBLE_EQ(losses1.at(step), loss) << "both ranks report the global loss";
    // The gradients of 16 steps went over the pair, both ways.
    for (int r = 0; r < 2; ++r) {
        const std::uint64_t sent = net.sent(r);
        EXPECT_GT(sent, 1u << 20) << "rank " << r << " sent little over its interface";
        std::cout << "[ figures  ] rank " << r << " sent " << (sent >> 10)
                  << " KiB over its end of the veth pair\n";
    }
}

}  // namespace
}  // namespace smartcash::integration
