// smartcashd end to end with real processes: the fake worker (fake_worker.cpp) stands in for
// smartcash-worker and misbehaves on request through each tier's env.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "common/file_lock.hpp"
#include "common/protocol.hpp"
#include "common/run_dir.hpp"
#include "ctl/control_client.hpp"
#include "tests/support/journal.hpp"

namespace smartcash::daemon {
namespace {

using protocol::Json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Settings that keep every test to a few seconds.
std::string supervisor_yaml(const std::string& heartbeat = "5s", int retry_budget = 3,
                            const std::string& extra = "") {
    return "supervisor:\n  poll_interval: 20ms\n  min_available: 0\n  heartbeat_timeout: " +
           heartbeat +
           "\n  stop_grace: 500ms\n  backoff_floor: 50ms\n  backoff_cap: 200ms\n  retry_budget: " +
           std::to_string(retry_budget) + "\n" + extra;
}

std::string tier(const std::string& name, const std::string& limit, const std::string& env) {
    return "  - name: " + name +
           "\n    device: cpu\n    micro_batch: 1\n    memory_limit: " + limit + "\n    env: {" +
           env + "}\n";
}

class Dir {
  public:
    explicit Dir(const std::string& name)
        : m_path(std::string(SMARTCASH_TEST_TMP) + "/sd-" + name) {
        fs::remove_all(m_path);
        fs::create_directories(m_path);
    }
    std::string run() const { return m_path + "/run"; }
    std::string file(const std::string& n) const { return m_path + "/" + n; }
    std::string write_config(const std::string& tiers,
                             const std::string& supervisor = supervisor_yaml()) const {
        const std::string path = file("job.yaml");
        std::ofstream(path) << "tiers:\n" << tiers << supervisor;
        return path;
    }

  private:
    std::string m_path;
};

// Starts a program with stdout/stderr captured into files; returns its pid.
pid_t spawn(const std::vector<std::string>& argv, const std::string& out_file,
            const std::string& err_file) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        const int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        ::dup2(out, 1);
        ::dup2(err, 2);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    return pid;
}

pid_t start_daemon(const Dir& d, const std::string& config,
                   const std::string& worker = FAKE_WORKER_PATH) {
    return spawn(
        {SMARTCASHD_PATH, "run", "--config", config, "--run-dir", d.run(), "--worker", worker},
        d.file("smartcashd.out"), d.file("smartcashd.err"));
}

// Waits for a child of the test; returns its wait status, or -1 on timeout (then kills it).
int wait_child(pid_t pid, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) return status;
        std::this_thread::sleep_for(10ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return -1;
}

int exit_code_of(int status) { return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1; }

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
        if (pred()) return true;
        std::this_thread::sleep_for(20ms);
    }
    return pred();
}

std::vector<Json> events(const Dir& d) {
    return test_support::read_journal(run_dir::events(d.run()));
}

std::vector<Json> events_named(const Dir& d, const std::string& name) {
    return test_support::only_events(events(d), name);
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Json state_json(const Dir& d) {
    return Json::parse(slurp(run_dir::state(d.run())), nullptr, false);
}

std::optional<Json> status(const Dir& d) {
    std::string error;
    return control_request(run_dir::socket(d.run()), Json{{"cmd", "status"}}, &error, 2s);
}

// Gone, or a zombie nobody reaped yet: either way no longer running. Linux says so in
// /proc/PID/stat; elsewhere (macOS, no /proc) ps(1) prints the state, Z for a zombie.
bool process_gone(int pid) {
    if (::kill(pid, 0) != 0) return true;
#ifdef __linux__
    std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    const auto close = stat.rfind(')');
    return close == std::string::npos || stat.size() < close + 3 || stat[close + 2] == 'Z' ||
           stat[close + 2] == 'X';
#else
    FILE* ps = ::popen(("ps -o stat= -p " + std::to_string(pid) + " 2>/dev/null").c_str(), "r");
    if (!ps) return false;
    char state[32] = {};
    const bool listed = std::fgets(state, sizeof state, ps) != nullptr;
    ::pclose(ps);
    return !listed || state[0] == 'Z';
#endif
}

// false(1): /bin/false on Linux, /usr/bin/false on macOS (which has no /bin/false).
std::string false_program() { return fs::exists("/bin/false") ? "/bin/false" : "/usr/bin/false"; }

std::string dump(const std::vector<Json>& v) {
    std::string s;
    for (auto& j : v) s += j.dump() + "\n";
    return s;
}

TEST(SupervisorShell, SoftLimitMovesDownWithNoStepLostAndFinishes) {
    Dir d("soft");
    const std::string config =
        // The worker's memory grows to a plateau between the soft limit (0.85 x 96 MiB) and the
        // hard one, and stays there: the soft limit is reached however late a poll comes.
        d.write_config(tier("big", "96MiB",
                            "FAKE_MODE: alloc, FAKE_ALLOC_MB: \"12\", FAKE_ALLOC_MAX_MB: \"84\"") +
                       tier("small", "0", "FAKE_MODE: done, FAKE_STEPS: \"20\""));
    const pid_t pid = start_daemon(d, config);
    EXPECT_EQ(exit_code_of(wait_child(pid, 30s)), 0) << slurp(d.file("smartcashd.err"));
    auto all = events(d);
    auto exits = events_named(d, "exit");
    ASSERT_EQ(exits.size(), 2u) << dump(all);
    EXPECT_EQ(exits[0].value("class", ""), "requested");
    EXPECT_EQ(exits[0].value("stop_reason", ""), "memory");
    EXPECT_EQ(exits[1].value("class", ""), "done");
    auto moves = events_named(d, "tier-move");
    ASSERT_EQ(moves.size(), 1u);
    EXPECT_EQ(moves[0].value("reason", ""), "soft-limit");
    EXPECT_EQ(moves[0].value("to", ""), "small");
    // No step lost: the second launch resumes at the stop checkpoint's step.
    auto hellos = events_named(d, "hello");
    auto checkpoints = events_named(d, "checkpoint");
    ASSERT_EQ(hellos.size(), 2u);
    std::int64_t stop_step = -1;
    for (auto& c : checkpoints)
        if (c.value("kind", "") == "stop") stop_step = c.value("step", std::int64_t{-1});
    EXPECT_GT(stop_step, 0);
    EXPECT_EQ(hellos[1].value("resumed_step", std::int64_t{-2}), stop_step);
    // One log per launch, and no supervisor fd leaked into the worker.
    const std::string log1 = slurp(run_dir::logs(d.run()) + "/worker-1.log");
    const std::string log2 = slurp(run_dir::logs(d.run()) + "/worker-2.log");
    EXPECT_NE(log1.find("tier=big"), std::string::npos) << log1;
    EXPECT_NE(log2.find("tier=small"), std::string::npos) << log2;
    EXPECT_NE(log1.find("extra_fds=0"), std::string::npos) << log1;
    Json st = state_json(d);
    EXPECT_EQ(st.value("status", ""), "done");
    EXPECT_EQ(st.value("tier", ""), "small");
    EXPECT_GT(st["tiers"]["big"].value("peak_rss", std::uint64_t{0}), 80ull << 20);
    EXPECT_FALSE(fs::exists(run_dir::socket(d.run())));
}

TEST(SupervisorShell, HardLimitKillIsOomKilledAndMovesDown) {
    Dir d("hard");
    // soft limit at 100%: only the watchdog's hard limit can act.
    const std::string config = d.write_config(
        tier("big", "64MiB", "FAKE_MODE: alloc, FAKE_ALLOC_MB: \"24\", FAKE_STEP_MS: \"60\"") +
            tier("small", "0", "FAKE_MODE: done, FAKE_STEPS: \"10\""),
        supervisor_yaml("5s", 3, "  soft_limit_fraction: 1.0\n"));
    const pid_t pid = start_daemon(d, config);
    EXPECT_EQ(exit_code_of(wait_child(pid, 30s)), 0) << slurp(d.file("smartcashd.err"));
    auto all = events(d);
    ASSERT_EQ(events_named(d, "watchdog-kill").size(), 1u) << dump(all);
    auto exits = events_named(d, "exit");
    ASSERT_EQ(exits.size(), 2u) << dump(all);
    EXPECT_EQ(exits[0].value("class", ""), "oom-killed");
    EXPECT_EQ(exits[0].value("signal", 0), SIGKILL);
    EXPECT_EQ(exits[1].value("class", ""), "done");
    EXPECT_EQ(events_named(d, "tier-move").at(0).value("reason", ""), "oom-killed");
}

TEST(SupervisorShell, CrashLoopStopsAfterTheRetryBudget) {
    Dir d("crash");
    const std::string config =
        d.write_config(tier("only", "0", "FAKE_MODE: segv, FAKE_STEPS: \"1\""));
    const pid_t pid = start_daemon(d, config);
    EXPECT_EQ(exit_code_of(wait_child(pid, 30s)), 1) << slurp(d.file("smartcashd.err"));
    auto exits = events_named(d, "exit");
    ASSERT_EQ(exits.size(), 3u) << dump(events(d));
    for (auto& e : exits) {
        EXPECT_EQ(e.value("class", ""), "crash");
        EXPECT_EQ(e.value("signal", 0), SIGSEGV);
        EXPECT_EQ(e.value("tier", ""), "only");
    }
    EXPECT_EQ(events_named(d, "backoff").size(), 2u);
    Json st = state_json(d);
    EXPECT_EQ(st.value("status", ""), "failed");
    EXPECT_NE(st.value("message", "").find("3 times in a row"), std::string::npos) << st.dump();
}

TEST(SupervisorShell, ConfigErrorIsFatalAfterOneLaunch) {
    Dir d("fatal");
    const std::string config = d.write_config(tier(
        "only", "0",
        "FAKE_MODE: exit, FAKE_STEPS: \"0\", FAKE_EXIT_CODE: \"78\", FAKE_ERROR_KIND: config"));
    const pid_t pid = start_daemon(d, config);
    EXPECT_EQ(exit_code_of(wait_child(pid, 30s)), 1);
    auto exits = events_named(d, "exit");
    ASSERT_EQ(exits.size(), 1u) << dump(events(d));
    EXPECT_EQ(exits[0].value("class", ""), "fatal");
    Json st = state_json(d);
    EXPECT_EQ(st.value("status", ""), "failed");
    EXPECT_NE(st.value("message", "").find("fake config problem"), std::string::npos) << st.dump();
}

TEST(SupervisorShell, HangGetsTermThenKillAndCountsAsCrash) {
    Dir d("hang");
    const std::string config =
        d.write_config(tier("only", "0",
                            "FAKE_MODE: hang, FAKE_STEPS: \"2\", FAKE_IGNORE_TERM: \"1\", "
                            "FAKE_CHECKPOINT_EVERY: \"0\""),
                       supervisor_yaml("400ms", 1));
    const pid_t pid = start_daemon(d, config);
    EXPECT_EQ(exit_code_of(wait_child(pid, 30s)), 1) << slurp(d.file("smartcashd.err"));
    auto all = events(d);
    ASSERT_EQ(events_named(d, "hang").size(), 1u) << dump(all);
    ASSERT_EQ(events_named(d, "kill").size(), 1u) << dump(all);
    auto exits = events_named(d, "exit");
    ASSERT_EQ(exits.size(), 1u);
    EXPECT_EQ(exits[0].value("class", ""), "hang");
    EXPECT_EQ(exits[0].value("signal", 0), SIGKILL);
}

// A worker that cannot be executed stays so: the job fails at the first launch, no backoff.
TEST(SupervisorShell, AWorkerThatCannotBeExecutedFailsAtTheFirstLaunch) {
    Dir d("noexec");
    const std::string config = d.write_config(tier("only", "0", "FAKE_MODE: done"));
    const std::string not_executable = d.file("not-executable");
    std::ofstream(not_executable) << "#!/bin/sh\nexit 0\n";
    ::chmod(not_executable.c_str(), 0644);
    const std::pair<std::string, std::string> cases[] = {
        {d.file("no-such-worker"), "No such file or directory"},
        {not_executable, "Permission denied"}};
    for (const auto& [worker, why] : cases) {
        fs::remove_all(d.run());
        const auto t0 = std::chrono::steady_clock::now();
        const pid_t pid = start_daemon(d, config, worker);
        EXPECT_EQ(exit_code_of(wait_child(pid, 30s)), 1) << slurp(d.file("smartcashd.err"));
        EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
        const auto failed = events_named(d, "spawn-failed");
        ASSERT_EQ(failed.size(), 1u) << dump(events(d));
        EXPECT_TRUE(failed[0].value("cannot_execute", false));
        EXPECT_TRUE(events_named(d, "backoff").empty()) << dump(events(d));
        const std::string message = state_json(d).value("message", "");
        EXPECT_NE(message.find(worker), std::string::npos) << message;
        EXPECT_NE(message.find(why), std::string::npos) << message;
    }
}

// Boost.Process once ran the exit handler inside the launch when the child was already gone;
// the supervisor then crashed on a worker that died at once. Many runs, every one must end by
// its own exit code (1: failed after the retry budget), none by a signal.
TEST(SupervisorShell, FiftySupervisorsOnAWorkerThatExitsAtOnceAllExitOne) {
    Dir d("instant-exit");
    const std::string config = d.write_config(tier("only", "0", ""));
    constexpr int runs = 50;
    constexpr int at_once = 10;
    std::vector<std::string> failures;
    for (int first = 0; first < runs; first += at_once) {
        std::vector<std::pair<int, pid_t>> batch;
        for (int i = first; i < first + at_once; ++i) {
            const std::string run = d.file("run-" + std::to_string(i));
            batch.emplace_back(
                i, spawn({SMARTCASHD_PATH, "run", "--config", config, "--run-dir", run, "--worker",
                          false_program()},
                         d.file("out-" + std::to_string(i)), d.file("err-" + std::to_string(i))));
        }
        for (const auto& [i, pid] : batch) {
            const int status = wait_child(pid, 60s);
            if (status < 0)
                failures.push_back("run " + std::to_string(i) + ": timed out");
            else if (WIFSIGNALED(status))
                failures.push_back("run " + std::to_string(i) + ": killed by signal " +
                                   std::to_string(WTERMSIG(status)));
            else if (WEXITSTATUS(status) != 1)
                failures.push_back("run " + std::to_string(i) + ": exit " +
                                   std::to_string(WEXITSTATUS(status)));
        }
    }
    EXPECT_TRUE(failures.empty()) << ::testing::PrintToString(failures);
}

TEST(SupervisorShell, LockSocketStatusAndBadClients) {
    Dir d("socket");
    const std::string config = d.write_config(
        tier("only", "0", "FAKE_MODE: done, FAKE_STEPS: \"100000\", FAKE_STEP_MS: \"20\""));
    const pid_t pid = start_daemon(d, config);
    ASSERT_TRUE(wait_for(
        [&] {
            auto s = status(d);
            return s && s->value("pid", 0) > 0 && s->value("step", std::int64_t{-1}) > 0;
        },
        10s))
        << slurp(d.file("smartcashd.err"));

    struct stat st {};
    ASSERT_EQ(::stat(run_dir::socket(d.run()).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    // A second supervisor on the same run directory is refused with a clear message.
    const pid_t second = spawn({SMARTCASHD_PATH, "run", "--config", config, "--run-dir", d.run(),
                                "--worker", FAKE_WORKER_PATH},
                               d.file("second.out"), d.file("second.err"));
    EXPECT_EQ(exit_code_of(wait_child(second, 10s)), 1);
    EXPECT_NE(slurp(d.file("second.err")).find("another supervisor"), std::string::npos)
        << slurp(d.file("second.err"));

    auto s = status(d);
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->value("ok", false));
    EXPECT_EQ(s->value("state", ""), "running");
    EXPECT_EQ(s->value("tier", ""), "only");
    const int worker_pid = s->value("pid", 0);
    EXPECT_GT(worker_pid, 0);
    EXPECT_TRUE(s->contains("loss"));
    EXPECT_TRUE(s->contains("map50"));
    EXPECT_TRUE(s->contains("rss"));
    EXPECT_TRUE(s->contains("message"));

    const std::string sock = run_dir::socket(d.run());
    std::string error;
    // A client that connects and says nothing costs only its own connection.
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock.c_str());
    const int silent = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_EQ(::connect(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);

    auto garbage = control_exchange_raw(sock, "this is not json\n", &error, 3s);
    ASSERT_TRUE(garbage) << error;
    Json g = Json::parse(*garbage, nullptr, false);
    ASSERT_FALSE(g.is_discarded()) << *garbage;
    EXPECT_FALSE(g.value("ok", true));
    EXPECT_FALSE(g.value("error", "").empty());

    auto unknown = control_request(sock, Json{{"cmd", "launch-missiles"}}, &error, 3s);
    ASSERT_TRUE(unknown) << error;
    EXPECT_FALSE(unknown->value("ok", true));
    EXPECT_NE(unknown->value("error", "").find("unknown command"), std::string::npos);

    auto no_cmd = control_request(sock, Json{{"command", "status"}}, &error, 3s);
    ASSERT_TRUE(no_cmd) << error;
    EXPECT_FALSE(no_cmd->value("ok", true));

    // Longer than the line limit: one error answer, then the supervisor closes the connection.
    {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        ASSERT_GE(fd, 0);
        ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
        const std::string huge = std::string(protocol::max_line_bytes + 1000, 'x') + "\n";
        const auto old_pipe = ::signal(SIGPIPE, SIG_IGN);  // it may close before reading it all
        std::size_t sent = 0;
        while (sent < huge.size()) {
            const ssize_t n = ::send(fd, huge.data() + sent, huge.size() - sent, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            sent += static_cast<std::size_t>(n);
        }
        ::signal(SIGPIPE, old_pipe);
        std::string answer;
        bool closed = false;
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        char buf[4096];
        while (!closed && std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                closed = true;
                break;
            }
            answer.append(buf, static_cast<std::size_t>(n));
        }
        ::close(fd);
        EXPECT_TRUE(closed) << "the connection stayed open after an oversized request";
        ASSERT_FALSE(answer.empty()) << "no answer to an oversized request";
        ASSERT_EQ(answer.find('\n'), answer.size() - 1) << "expected exactly one line: " << answer;
        Json b = Json::parse(answer.substr(0, answer.size() - 1), nullptr, false);
        ASSERT_FALSE(b.is_discarded()) << answer;
        EXPECT_FALSE(b.value("ok", true)) << answer;
        EXPECT_NE(b.value("error", "").find("longer than"), std::string::npos) << answer;
    }

    // The supervisor is still fine, with the silent client still connected.
    auto again = status(d);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->value("state", ""), "running");
    EXPECT_EQ(again->value("pid", 0), worker_pid);
    ::close(silent);

    // The command-line client, both ways.
    const pid_t ctl = spawn({SMARTCASHCTL_PATH, "--run-dir", d.run(), "status"}, d.file("ctl.out"),
                            d.file("ctl.err"));
    EXPECT_EQ(exit_code_of(wait_child(ctl, 10s)), 0) << slurp(d.file("ctl.err"));
    EXPECT_NE(slurp(d.file("ctl.out")).find("tier:"), std::string::npos)
        << slurp(d.file("ctl.out"));
    const pid_t ctl_json = spawn({SMARTCASHCTL_PATH, "--socket", sock, "status", "--json"},
                                 d.file("ctlj.out"), d.file("ctlj.err"));
    EXPECT_EQ(exit_code_of(wait_child(ctl_json, 10s)), 0);
    Json cj = Json::parse(slurp(d.file("ctlj.out")), nullptr, false);
    EXPECT_EQ(cj.value("tier", ""), "only") << slurp(d.file("ctlj.out"));

    // stop: the worker checkpoints and exits; the supervisor reports "stopped".
    auto stop = control_request(sock, Json{{"cmd", "stop"}}, &error, 3s);
    ASSERT_TRUE(stop) << error;
    EXPECT_TRUE(stop->value("ok", false));
    EXPECT_EQ(exit_code_of(wait_child(pid, 20s)), 3) << slurp(d.file("smartcashd.err"));
    auto exits = events_named(d, "exit");
    ASSERT_EQ(exits.size(), 1u);
    EXPECT_EQ(exits[0].value("class", ""), "requested");
    EXPECT_EQ(state_json(d).value("status", ""), "stopped");
    EXPECT_TRUE(process_gone(worker_pid));
}

TEST(SupervisorShell, SupervisorKilledLeavesNoOrphanAndRestartContinuesAtRecordedTier) {
    Dir d("restart");
    const std::string config = d.write_config(
        tier("big", "96MiB", "FAKE_MODE: alloc, FAKE_STEP_MS: \"30\"") +
        tier("small", "0", "FAKE_MODE: done, FAKE_STEPS: \"120\", FAKE_STEP_MS: \"25\""));
    const pid_t pid = start_daemon(d, config);
    int worker_pid = 0;
    ASSERT_TRUE(wait_for(
        [&] {
            auto s = status(d);
            if (!s || s->value("tier", "") != "small" || s->value("step", std::int64_t{-1}) < 20)
                return false;
            worker_pid = s->value("pid", 0);
            return worker_pid > 0;
        },
        20s))
        << slurp(d.file("smartcashd.err"));

    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    // The worker notices its supervisor's death, checkpoints and stops on its own.
    EXPECT_TRUE(wait_for([&] { return process_gone(worker_pid); }, 10s))
        << "worker " << worker_pid << " outlived";
    const std::size_t events_before = events(d).size();

    const pid_t again = start_daemon(d, config);
    EXPECT_EQ(exit_code_of(wait_child(again, 30s)), 0) << slurp(d.file("smartcashd.err"));
    auto all = events(d);
    std::vector<Json> after(all.begin() + static_cast<std::ptrdiff_t>(events_before), all.end());
    ASSERT_FALSE(after.empty());
    EXPECT_EQ(after[0].value("event", ""), "start");
    EXPECT_EQ(after[0].value("tier", ""), "small");
    std::vector<Json> launches;
    for (auto& e : after)
        if (e.value("event", "") == "launch") launches.push_back(e);
    ASSERT_EQ(launches.size(), 1u) << dump(after);
    EXPECT_EQ(launches[0].value("tier", ""), "small");
    for (auto& e : after)
        if (e.value("event", "") == "hello") {
            EXPECT_GE(e.value("resumed_step", std::int64_t{0}), 20);
        }
    EXPECT_EQ(state_json(d).value("status", ""), "done");
    EXPECT_TRUE(fs::exists(run_dir::logs(d.run()) + "/worker-3.log"));
}

TEST(SupervisorShell, StartDetachesAndPrintsPidAndSocket) {
    Dir d("detach");
    const std::string config = d.write_config(
        tier("only", "0", "FAKE_MODE: done, FAKE_STEPS: \"100000\", FAKE_STEP_MS: \"20\""));
    const pid_t starter = spawn({SMARTCASHD_PATH, "start", "--config", config, "--run-dir", d.run(),
                                 "--worker", FAKE_WORKER_PATH},
                                d.file("start.out"), d.file("start.err"));
    ASSERT_EQ(exit_code_of(wait_child(starter, 10s)), 0) << slurp(d.file("start.err"));
    const std::string out = slurp(d.file("start.out"));
    EXPECT_NE(
        out.find("socket " + run_dir::socket(fs::absolute(d.run()).lexically_normal().string())),
        std::string::npos)
        << out;
    const auto at = out.find("pid ");
    ASSERT_NE(at, std::string::npos) << out;
    const int daemon_pid = std::atoi(out.c_str() + at + 4);
    ASSERT_GT(daemon_pid, 0);
    auto s = status(d);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->value("supervisor_pid", 0), daemon_pid);
    std::string error;
    auto stop = control_request(run_dir::socket(d.run()), Json{{"cmd", "stop"}}, &error, 3s);
    ASSERT_TRUE(stop) << error;
    EXPECT_TRUE(wait_for([&] { return process_gone(daemon_pid); }, 20s));
    EXPECT_EQ(state_json(d).value("status", ""), "stopped");
}

TEST(SupervisorShell, UsageErrorsExitTwo) {
    Dir d("usage");
    const pid_t p = spawn({SMARTCASHD_PATH, "frobnicate"}, d.file("u.out"), d.file("u.err"));
    EXPECT_EQ(exit_code_of(wait_child(p, 10s)), 2);
    EXPECT_NE(slurp(d.file("u.err")).find("usage:"), std::string::npos);
    const pid_t q = spawn({SMARTCASHD_PATH, "run"}, d.file("v.out"), d.file("v.err"));
    EXPECT_EQ(exit_code_of(wait_child(q, 10s)), 2);
}

TEST(SupervisorShell, SeveralRanksWithoutAMasterOrWithARankOutOfRangeAreUsageErrors) {
    Dir d("world-usage");
    struct Case {
        std::vector<std::string> args;
        const char* says;
    };
    const std::vector<Case> cases = {
        {{"--nnodes", "2", "--node-rank", "1"}, "the address of rank 0"},
        {{"--nnodes", "2", "--node-rank", "2", "--master", "127.0.0.1:29500"}, "out of range"},
        {{"--nnodes", "2", "--master", "no-port-here"}, "--master needs HOST:PORT"},
        {{"--nnodes", "two"}, "--nnodes needs a whole number"},
        {{"--nnodes", "2", "--master", "127.0.0.1:70000"}, "--master needs HOST:PORT"},
    };
    int n = 0;
    for (const Case& c : cases) {
        std::vector<std::string> argv{SMARTCASHD_PATH, "run", "--config", d.file("job.yaml")};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        const std::string err = d.file("w" + std::to_string(++n) + ".err");
        const pid_t p = spawn(argv, d.file("w.out"), err);
        EXPECT_EQ(exit_code_of(wait_child(p, 10s)), 2) << c.says;
        EXPECT_NE(slurp(err).find(c.says), std::string::npos) << slurp(err);
    }
}

// A worker's helpers die with it (its process group), even when the worker itself crashed.
TEST(SupervisorShell, HelpersOfAWorkerThatDiedAreKilled) {
    Dir d("helpers");
    const std::string config =
        d.write_config(tier("only", "0", "FAKE_MODE: segv, FAKE_STEPS: \"3\", FAKE_HELPER: \"1\""),
                       supervisor_yaml("5s", 1));
    const pid_t pid = start_daemon(d, config);
    ASSERT_TRUE(wait_for([&] { return fs::exists(d.run() + "/helper.pid"); }, 20s));
    int helper = 0;
    std::ifstream(d.run() + "/helper.pid") >> helper;
    ASSERT_GT(helper, 0);
    EXPECT_EQ(exit_code_of(wait_child(pid, 30s)), 1) << slurp(d.file("smartcashd.err"));
    const auto exits = events_named(d, "exit");
    ASSERT_EQ(exits.size(), 1u) << dump(events(d));
    EXPECT_EQ(exits[0].value("signal", 0), SIGSEGV);
    const bool gone = wait_for([&] { return process_gone(helper); }, 2s);
    if (!gone) ::kill(helper, SIGKILL);
    EXPECT_TRUE(gone) << "the helper of a crashed worker outlived it";
}

// Lowers another process's soft file size limit (EFBIG on every write past it): a full disk
// for that process alone.
void set_file_size_limit(pid_t pid, rlim_t soft) {
#ifdef __linux__
    struct rlimit current {};
    ASSERT_EQ(::prlimit(pid, RLIMIT_FSIZE, nullptr, &current), 0) << std::strerror(errno);
    struct rlimit wanted = current;
    wanted.rlim_cur = soft;
    ASSERT_EQ(::prlimit(pid, RLIMIT_FSIZE, &wanted, nullptr), 0) << std::strerror(errno);
#else
    (void)pid;
    (void)soft;
    FAIL() << "prlimit(2) is Linux only";
#endif
}

// With state.json and the journal unwritable, the supervisor keeps acting on the state in
// memory, says so in status, and writes both once it can.
TEST(SupervisorShell, UnwritableRunDirectoryKeepsTheStateInMemoryAndCatchesUp) {
#ifndef __linux__
    GTEST_SKIP() << "lowering another process's file size limit needs prlimit(2), Linux only";
#endif
    Dir d("unwritable");
    const std::string config =
        d.write_config(tier("a", "0", "FAKE_MODE: done, FAKE_STEPS: \"100000\"") +
                       tier("b", "0", "FAKE_MODE: done, FAKE_STEPS: \"100000\""));
    const pid_t pid = start_daemon(d, config);
    auto request = [&](const Json& r) {
        std::string error;
        auto reply = control_request(run_dir::socket(d.run()), r, &error, 3s);
        EXPECT_TRUE(reply) << error;
        return reply.value_or(Json());
    };
    ASSERT_TRUE(wait_for([&] { return !events_named(d, "hello").empty(); }, 20s));
    EXPECT_TRUE(request(Json{{"cmd", "pause"}}).value("ok", false));
    ASSERT_TRUE(wait_for([&] { return state_json(d).value("status", "") == "paused"; }, 20s));
    const std::size_t lines_before = events(d).size();

    set_file_size_limit(pid, 1);
    const Json moved = request(Json{{"cmd", "tier"}, {"tier", "b"}});
    EXPECT_TRUE(moved.value("ok", false)) << moved.dump();
    const Json during = request(Json{{"cmd", "status"}});
    EXPECT_EQ(during.value("tier", ""), "b") << during.dump();
    ASSERT_TRUE(during.contains("persistence")) << during.dump();
    EXPECT_FALSE(during["persistence"].value("ok", true)) << during.dump();
    EXPECT_NE(during["persistence"].value("error", "").find("File too large"), std::string::npos)
        << during.dump();
    EXPECT_EQ(state_json(d).value("tier", ""), "a");  // the disk still has the old state
    EXPECT_EQ(events(d).size(), lines_before);

    set_file_size_limit(pid, RLIM_INFINITY);
    EXPECT_TRUE(wait_for([&] { return state_json(d).value("tier", "") == "b"; }, 5s));
    const auto moves = events_named(d, "tier-move");
    ASSERT_EQ(moves.size(), 1u) << dump(events(d));
    EXPECT_EQ(moves[0].value("to", ""), "b");
    EXPECT_TRUE(wait_for(
        [&] {
            return request(Json{{"cmd", "status"}})["persistence"].value("ok", false);
        },
        5s));

    EXPECT_TRUE(request(Json{{"cmd", "stop"}}).value("ok", false));
    EXPECT_EQ(exit_code_of(wait_child(pid, 20s)), 3) << slurp(d.file("smartcashd.err"));
    EXPECT_NE(slurp(d.file("smartcashd.err")).find("writable again"), std::string::npos);
}

// Device presence has one owner, the worker: the supervisor asks it and skips what it cannot use.
TEST(SupervisorShell, TiersAreSkippedByTheWorkersOwnAnswerOnDevices) {
    const std::string tiers =
        "  - {name: gpu, device: cuda, micro_batch: 1, memory_limit: 0, env: {FAKE_STEPS: \"5\"}}\n"
        "  - {name: cpu, device: cpu, micro_batch: 1, memory_limit: 0, env: {FAKE_STEPS: \"5\"}}\n";
    {
        Dir d("devices-absent");
        ::setenv("FAKE_DEVICES_WHY", "this LibTorch was built without CUDA", 1);
        const pid_t pid = start_daemon(d, d.write_config(tiers));
        ::unsetenv("FAKE_DEVICES_WHY");
        EXPECT_EQ(exit_code_of(wait_child(pid, 30s)), 0) << slurp(d.file("smartcashd.err"));
        const auto skipped = events_named(d, "tier-skipped");
        ASSERT_EQ(skipped.size(), 1u) << dump(events(d));
        EXPECT_EQ(skipped[0].value("tier", ""), "gpu");
        EXPECT_NE(skipped[0].value("reason", "").find("this LibTorch was built without CUDA"),
                  std::string::npos)
            << skipped[0].dump();
        for (const auto& l : events_named(d, "launch")) EXPECT_EQ(l.value("tier", ""), "cpu");
    }
    {
        Dir d("devices-present");
        ::setenv("FAKE_DEVICES", "cuda", 1);
        const pid_t pid = start_daemon(d, d.write_config(tiers));
        ::unsetenv("FAKE_DEVICES");
        EXPECT_EQ(exit_code_of(wait_child(pid, 30s)), 0) << slurp(d.file("smartcashd.err"));
        EXPECT_TRUE(events_named(d, "tier-skipped").empty()) << dump(events(d));
        const auto launches = events_named(d, "launch");
        ASSERT_FALSE(launches.empty());
        EXPECT_EQ(launches[0].value("tier", ""), "gpu");
    }
}

// A worker of an earlier supervisor holds RUN_DIR/worker.lock: the new supervisor waits for
// it (stop_grace), then kills it, and only then launches its own worker.
TEST(SupervisorShell, WaitsForTheEarlierWorkersLockThenKillsIt) {
    Dir d("worker-lock");
    const std::string config = d.write_config(tier("only", "0", "FAKE_STEPS: \"5\""));
    fs::create_directories(d.run());
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t old_worker = ::fork();
    if (old_worker == 0) {
        FileLock::Failure why{};
        std::string error;
        auto lock = FileLock::try_acquire(run_dir::worker_lock(d.run()), &why, &error);
        const char ok = lock ? '1' : '0';
        (void)!::write(ready[1], &ok, 1);
        for (;;) ::pause();
    }
    ::close(ready[1]);
    char ok = 0;
    ASSERT_EQ(::read(ready[0], &ok, 1), 1);
    ::close(ready[0]);
    ASSERT_EQ(ok, '1');
    int holder = 0;
    ASSERT_TRUE(FileLock::held(run_dir::worker_lock(d.run()), &holder));
    EXPECT_EQ(holder, old_worker);

    const pid_t pid = start_daemon(d, config);
    const int old_status = wait_child(old_worker, 20s);
    EXPECT_EQ(exit_code_of(wait_child(pid, 30s)), 0) << slurp(d.file("smartcashd.err"));
    ASSERT_GE(old_status, 0);
    EXPECT_TRUE(WIFSIGNALED(old_status) && WTERMSIG(old_status) == SIGKILL);
    const std::string err = slurp(d.file("smartcashd.err"));
    EXPECT_NE(err.find("still holds"), std::string::npos) << err;
    EXPECT_NE(err.find("killing the earlier worker (pid " + std::to_string(old_worker) + ")"),
              std::string::npos)
        << err;
}

}  // namespace
}  // namespace smartcash::daemon
