// WorkerProcess with real processes: it reaps its own child, reports every end exactly once
// (also a child that dies before the launch returns), and never touches a pid once reaped.
#include "daemon/shell/worker_process.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

namespace smartcash::daemon {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string scratch(const std::string& name) {
    const std::string dir = std::string(SMARTCASH_TEST_TMP) + "/wp-" + name;
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

LaunchSpec shell(const std::string& dir, const std::string& script) {
    LaunchSpec spec;
    spec.executable = "/bin/sh";
    spec.args = {"-c", script};
    spec.log_path = dir + "/log";
    return spec;
}

// Runs the loop until `done` holds or the time is up.
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (!done() && std::chrono::steady_clock::now() < end) {
        io.restart();
        io.run_for(10ms);
    }
    return done();
}

TEST(WorkerProcess, AChildThatExitsAtOnceEndsOnceWithItsCode) {
    const std::string dir = scratch("instant");
    for (int i = 0; i < 50; ++i) {
        boost::asio::io_context io;
        auto wp = std::make_shared<WorkerProcess>(io);
        int ends = 0;
        ProcessEnd end;
        auto error = wp->start(
            shell(dir, "exit 7"), [](const protocol::Json&) {}, nullptr,
            [&](const ProcessEnd& e) {
                ++ends;
                end = e;
            });
        ASSERT_FALSE(error) << error->message;
        EXPECT_EQ(ends, 0) << "the exit callback ran inside start()";
        ASSERT_TRUE(run_until(
            io, [&] { return ends > 0; }, 10s));
        io.restart();
        io.run_for(20ms);
        EXPECT_EQ(ends, 1);
        ASSERT_TRUE(end.exit_code);
        EXPECT_EQ(*end.exit_code, 7);
        EXPECT_FALSE(end.signal);
    }
}

TEST(WorkerProcess, ADeathBySignalIsReportedAsThatSignal) {
    const std::string dir = scratch("signal");
    boost::asio::io_context io;
    auto wp = std::make_shared<WorkerProcess>(io);
    std::optional<ProcessEnd> end;
    ASSERT_FALSE(wp->start(
        shell(dir, "kill -SEGV $$"), [](const protocol::Json&) {}, nullptr,
        [&](const ProcessEnd& e) { end = e; }));
    ASSERT_TRUE(run_until(
        io, [&] { return end.has_value(); }, 10s));
    ASSERT_TRUE(end->signal);
    EXPECT_EQ(*end->signal, SIGSEGV);
}

TEST(WorkerProcess, AnOverlongReportLineIsOneBadLineAndTheNextLineArrives) {
    // 70000 bytes without a newline (over the 64 KiB limit), then, in a later write, the rest of
    // that line and a good one. The rest must be discarded with the line, not read as a second
    // (malformed) line.
    const std::string dir = scratch("overlong");
    boost::asio::io_context io;
    auto wp = std::make_shared<WorkerProcess>(io);
    std::vector<std::string> bad;
    std::vector<protocol::Json> reports;
    std::optional<ProcessEnd> end;
    ASSERT_FALSE(wp->start(
        shell(dir,
              "out=/dev/fd/$SMARTCASH_REPORT_FD; head -c 70000 /dev/zero | tr '\\000' x >> $out; "
              "sleep 0.3; printf 'rest-of-the-long-line\\n{\"type\":\"hello\"}\\n' >> $out"),
        [&](const protocol::Json& r) { reports.push_back(r); },
        [&](const std::string& why) { bad.push_back(why); },
        [&](const ProcessEnd& e) { end = e; }));
    ASSERT_TRUE(run_until(
        io, [&] { return end.has_value(); }, 10s));
    ASSERT_EQ(bad.size(), 1u) << (bad.size() > 1 ? bad[1] : std::string());
    EXPECT_NE(bad[0].find("longer than the limit"), std::string::npos) << bad[0];
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_EQ(reports[0].value("type", ""), "hello");
}

TEST(WorkerProcess, AProgramThatCannotBeExecutedIsSaidSo) {
    const std::string dir = scratch("noexec");
    boost::asio::io_context io;
    auto wp = std::make_shared<WorkerProcess>(io);
    LaunchSpec spec;
    spec.executable = dir + "/missing";
    spec.log_path = dir + "/log";
    auto error = wp->start(
        spec, [](const protocol::Json&) {}, nullptr, [](const ProcessEnd&) {});
    ASSERT_TRUE(error);
    EXPECT_TRUE(error->cannot_execute);
    EXPECT_NE(error->message.find("No such file or directory"), std::string::npos)
        << error->message;
}

constexpr const char* ns_last_pid = "/proc/sys/kernel/ns_last_pid";

// Writes `value` to ns_last_pid: "" when it was taken, else why not (with the system's error).
std::string write_ns_last_pid(pid_t value) {
    const int fd = ::open(ns_last_pid, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return std::string("cannot open ") + ns_last_pid + ": " + std::strerror(errno);
    const std::string text = std::to_string(value);
    const ssize_t n = ::write(fd, text.data(), text.size());
    const int error = errno;
    ::close(fd);
    if (n != static_cast<ssize_t>(text.size()))
        return std::string("cannot write ") + ns_last_pid + ": " +
               (n < 0 ? std::strerror(error) : "short write");
    return "";
}

// Makes the next process forked get `pid` (Linux: ns_last_pid, needs CAP_SYS_ADMIN in the pid
// namespace). Returns the child's pid, which may differ when another process forked first, or
// -1 with `why` when ns_last_pid did not take the value.
pid_t fork_sleeper_with_pid(pid_t pid, std::string* why) {
    *why = write_ns_last_pid(pid - 1);
    if (!why->empty()) return -1;
    const pid_t child = ::fork();
    if (child == 0) {
        // Never outlive the test by much, and never hold its output open.
        const int null = ::open("/dev/null", O_RDWR);
        ::dup2(null, 1);
        ::dup2(null, 2);
        ::alarm(30);
        ::pause();
        ::_exit(0);
    }
    return child;
}

// Once the worker is reaped its pid can be handed to an unrelated process at once. A signal
// the supervisor sends then (a watchdog kill decided from a late memory reading, a stop) must
// not reach that process.
TEST(WorkerProcess, NoSignalReachesAProcessThatReusedTheReapedPid) {
    // Choosing the next pid needs Linux, CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE) in the pid
    // namespace and a writable /proc/sys. The file opens for everyone (mode 0666): only a write
    // tells, so the current value is written back; where it is refused the test cannot run here.
    std::ifstream current_file(ns_last_pid);
    long current = -1;
    if (!(current_file >> current) || current < 0)
        GTEST_SKIP() << "cannot read " << ns_last_pid << " (Linux only): " << std::strerror(errno);
    if (const std::string why = write_ns_last_pid(static_cast<pid_t>(current)); !why.empty())
        GTEST_SKIP() << why << "; choosing the next pid needs root (CAP_SYS_ADMIN) and a "
                     << "writable /proc/sys";
    const std::string dir = scratch("reuse");
    boost::asio::io_context io;
    auto wp = std::make_shared<WorkerProcess>(io);
    bool finished = false;
    // A grandchild in its own session keeps the report pipe open: the end is known (reaped)
    // while the exit callback still waits for the pipe to drain. The worker exits only once the
    // grandchild is out of its process group (the fifo), or the group kill would take it too.
    const std::string fifo = dir + "/in-own-session";
    ASSERT_FALSE(wp->start(
        shell(dir, "mkfifo " + fifo + " || exit 9; setsid sh -c 'echo x > " + fifo +
                       "; exec sleep 3' </dev/null >/dev/null 2>&1 & read x < " + fifo +
                       "; exit 0"),
        [](const protocol::Json&) {}, nullptr, [&](const ProcessEnd&) { finished = true; }));
    const pid_t old_pid = wp->pid();
    ASSERT_TRUE(run_until(
        io, [&] { return wp->reaped(); }, 10s));
    ASSERT_FALSE(finished);

    pid_t victim = -1;
    for (int attempt = 0; attempt < 20 && victim != old_pid; ++attempt) {
        if (victim > 0) {
            ::kill(victim, SIGKILL);
            ::waitpid(victim, nullptr, 0);
        }
        std::string why;
        victim = fork_sleeper_with_pid(old_pid, &why);
        ASSERT_GT(victim, 0) << why;
    }
    if (victim != old_pid) {
        ::kill(victim, SIGKILL);
        ::waitpid(victim, nullptr, 0);
        FAIL() << "could not get the reaped pid back for the test";
    }

    wp->signal(SIGKILL);
    wp->signal(SIGTERM);
    std::this_thread::sleep_for(100ms);
    int status = 0;
    const pid_t r = ::waitpid(victim, &status, WNOHANG);
    ::kill(victim, SIGKILL);
    ::waitpid(victim, nullptr, 0);
    EXPECT_EQ(r, 0) << "the process that took the reaped worker's pid was signalled";
    EXPECT_TRUE(run_until(
        io, [&] { return finished; }, 10s));
}

}  // namespace
}  // namespace smartcash::daemon
