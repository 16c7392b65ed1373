// The control socket's server (daemon/shell/control_server.cpp) hosted in the test process, each
// fault caused for real: the process out of descriptors while a client waits, a deadline that
// expires while its request is already read, every slot held by idle clients, a client of
// another user, a 1 MiB line.
#include "daemon/shell/control_server.hpp"

#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <filesystem>
#include <functional>
#include <future>
#include <thread>
#include <vector>

#include "common/protocol.hpp"
#include "tests/daemon/socket_client.hpp"

namespace smartcash::daemon {
namespace {

using namespace std::chrono_literals;
using protocol::Json;
using test::SocketClient;

// Answers every request with ok and the command's name.
Json echo(const Json& request) { return Json{{"ok", true}, {"echo", request.value("cmd", "")}}; }

const std::string status_line = "{\"cmd\":\"status\"}\n";

// A directory under /tmp (short enough for a socket path, reachable by every user).
std::string scratch(const std::string& name) {
    const std::string dir = "/tmp/smartcash-cs-" + name + "-" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

bool answered_ok(SocketClient& c, std::chrono::milliseconds timeout = 5s) {
    auto l = c.line(timeout);
    if (!l) return false;
    Json j = Json::parse(*l, nullptr, false);
    return j.is_object() && j.value("ok", false);
}

// A server whose loop runs on its own thread while the test plays the clients.
class ThreadedServer {
  public:
    explicit ThreadedServer(const std::string& dir,
                            ControlServer::Handler handler = ControlServer::Handler(echo))
        : path(dir + "/control.sock"), m_server(m_io, std::move(handler)) {
        auto error = m_server.listen(path);
        EXPECT_FALSE(error) << *error;
        m_thread = std::thread([this] { m_io.run(); });
    }
    ~ThreadedServer() {
        boost::asio::post(m_io, [this] {
            m_server.close();
            m_guard.reset();
        });
        m_thread.join();
    }
    const std::string path;

    /// Runs `f(server)` on the loop's thread and returns its result.
    template <typename F>
    auto call(F f) {
        std::promise<decltype(f(m_server))> done;
        boost::asio::post(m_io, [&] { done.set_value(f(m_server)); });
        return done.get_future().get();
    }

  private:
    boost::asio::io_context m_io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> m_guard{
        m_io.get_executor()};
    ControlServer m_server;
    std::thread m_thread;
};

double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return s(u.ru_utime) + s(u.ru_stime);
}

// The process has no descriptor left for the connection waiting to be accepted: the accept loop
// waits between tries instead of spinning a core, and serves the client once descriptors are
// free again.
TEST(ControlServer, OutOfDescriptorsTheAcceptLoopBacksOffAndRecovers) {
    const std::string dir = scratch("emfile");
    boost::asio::io_context io;
    ControlServer server(io, echo);
    ASSERT_FALSE(server.listen(dir + "/control.sock"));
    SocketClient client(dir + "/control.sock");  // waits in the listen backlog
    ASSERT_TRUE(client.ok());

    rlimit old{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
    rlimit low = old;
    low.rlim_cur = 128;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    std::vector<int> fillers;
    for (int fd; (fd = ::dup(0)) >= 0;) fillers.push_back(fd);
    ASSERT_EQ(errno, EMFILE);

    const double before = cpu_seconds();
    io.run_for(1s);
    const double used = cpu_seconds() - before;
    for (int fd : fillers) ::close(fd);
    ::setrlimit(RLIMIT_NOFILE, &old);
    EXPECT_LT(used, 0.3) << "the accept loop spun on EMFILE";
    EXPECT_EQ(server.sessions(), 0u);

    ASSERT_TRUE(client.send(status_line));
    std::optional<std::string> answer;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!answer && std::chrono::steady_clock::now() < deadline) {
        io.run_for(20ms);
        answer = client.line(1ms);
    }
    ASSERT_TRUE(answer) << "the client was not served once descriptors were free";
    EXPECT_NE(answer->find("\"ok\":true"), std::string::npos) << *answer;
}

// Runs the loop one handler at a time until `done` holds (false if it never does within a
// minute): the test waits for events, never for a time the machine may or may not keep up with.
bool run_until(boost::asio::io_context& io, const std::function<bool()>& done) {
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (!done()) {
        if (std::chrono::steady_clock::now() > give_up) return false;
        io.restart();
        io.run_one_for(10ms);
    }
    return true;
}

// The loop is busy past a session's deadline while the session's request line arrives: the read
// and the timer complete in the same turn. The read wins; the timer's stale completion must not
// close the healthy session afterwards.
TEST(ControlServer, AStaleDeadlineCompletionDoesNotCloseAHealthySession) {
    const std::string dir = scratch("stale");
    boost::asio::io_context io;
    ControlServer server(io, echo, 100ms);
    ASSERT_FALSE(server.listen(dir + "/control.sock"));
    SocketClient client(dir + "/control.sock");
    ASSERT_TRUE(client.ok());
    // Accepted: the session waits for a line, its deadline armed (in the same handler).
    ASSERT_TRUE(run_until(io, [&] { return server.sessions() == 1; }));

    ASSERT_TRUE(client.send(status_line));
    // The loop does not run: the deadline passes meanwhile (a sleep lasts at least this long).
    std::this_thread::sleep_for(250ms);
    std::optional<std::string> first;
    ASSERT_TRUE(run_until(io, [&] {
        return (first = client.line(0ms)) || client.closed_within(0ms);
    })) << "neither answered nor closed";
    ASSERT_TRUE(first) << "the session was closed by the deadline its request had met";
    EXPECT_NE(first->find("\"ok\":true"), std::string::npos) << *first;

    // The next request goes out before the loop runs again, so it is there before the session
    // reads again: only a stale completion of the old deadline could close the session now.
    ASSERT_TRUE(client.send(status_line));
    std::optional<std::string> second;
    ASSERT_TRUE(run_until(io, [&] {
        return (second = client.line(0ms)) || client.closed_within(0ms);
    })) << "neither answered nor closed";
    EXPECT_TRUE(second) << "the session was closed by a deadline it had already met";
}

// 32 clients hold every slot and say nothing more (one line every 9 s would do the same): a new
// client is still answered promptly, and one idle client gave up its slot for it.
TEST(ControlServer, WhenEverySlotIsHeldTheIdlestClientMakesRoom) {
    ThreadedServer server(scratch("slots"));
    std::vector<SocketClient> idle;
    for (std::size_t i = 0; i < ControlServer::max_sessions; ++i) {
        idle.emplace_back(server.path);
        ASSERT_TRUE(idle.back().ok());
        ASSERT_TRUE(idle.back().send(status_line));
        ASSERT_TRUE(answered_ok(idle.back())) << "client " << i;
    }
    const auto start = std::chrono::steady_clock::now();
    SocketClient fresh(server.path);
    ASSERT_TRUE(fresh.ok());
    ASSERT_TRUE(fresh.send(status_line));
    EXPECT_TRUE(answered_ok(fresh, 10s)) << "a new client was not served while slots were held";
    EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
    int evicted = 0;
    for (auto& c : idle) evicted += c.closed_within(10ms) ? 1 : 0;
    EXPECT_GE(evicted, 1);
    EXPECT_LE(evicted, 2);
}

// A 1 MiB line: an error answer, the connection closed, and the next client is served.
TEST(ControlServer, AOneMebibyteLineGetsAnErrorAndIsClosed) {
    ThreadedServer server(scratch("huge"));
    {
        SocketClient huge(server.path);
        ASSERT_TRUE(huge.ok());
        huge.send(std::string(1 << 20, 'x') + "\n");  // the server may close before the end
        auto answer = huge.line(5s);
        ASSERT_TRUE(answer);
        Json j = Json::parse(*answer, nullptr, false);
        EXPECT_FALSE(j.value("ok", true)) << *answer;
        EXPECT_NE(j.value("error", "").find("longer than"), std::string::npos) << *answer;
        EXPECT_TRUE(huge.closed_within(5s));
    }
    SocketClient next(server.path);
    ASSERT_TRUE(next.send(status_line));
    EXPECT_TRUE(answered_ok(next));
}

// A watcher is sent what is published, in order; a watcher that never reads is dropped once its
// queue is full, without holding up the loop or the watcher that reads.
TEST(ControlServer, AWatcherThatStopsReadingIsDroppedAndTheOthersGoOn) {
    ThreadedServer server(scratch("watch"));
    SocketClient reader(server.path), idle(server.path);
    for (SocketClient* c : {&reader, &idle}) {
        ASSERT_TRUE(c->send("{\"cmd\":\"watch\"}\n"));
        ASSERT_TRUE(answered_ok(*c));
    }
    ASSERT_EQ(server.call([](ControlServer& s) { return s.watchers(); }), 2u);
    const std::string filler(4000, 'x');
    std::size_t published = 0;
    for (int i = 0; i < 800; ++i) {
        const std::string line = "{\"n\":" + std::to_string(i) + ",\"f\":\"" + filler + "\"}\n";
        const auto start = std::chrono::steady_clock::now();
        server.call([&](ControlServer& s) {
            s.publish(line);
            return 0;
        });
        // A publish that waited for the client that never reads would never return: a bound far
        // past any slowness of a busy machine tells the two apart.
        ASSERT_LT(std::chrono::steady_clock::now() - start, 30s) << "publish waited for a client";
        published += line.size();
        auto got = reader.line(30s);
        ASSERT_TRUE(got) << "the reading watcher lost line " << i;
        ASSERT_EQ(*got + "\n", line);
    }
    EXPECT_GT(published, std::size_t{3} << 20);
    EXPECT_EQ(server.call([](ControlServer& s) { return s.watchers(); }), 1u)
        << "the watcher that never reads was kept";
    EXPECT_TRUE(idle.closed_within(10s));
    SocketClient after(server.path);
    ASSERT_TRUE(after.send(status_line));
    EXPECT_TRUE(answered_ok(after));
}

// A client running as `nobody`, with the socket file opened to everyone for this test (its mode
// 0600 alone would refuse it): the peer-credential check still refuses it with an error.
TEST(ControlServer, AnotherUserIsRefusedEvenWhenTheSocketFileIsOpen) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another user";
    const passwd* nobody = ::getpwnam("nobody");
    if (!nobody) GTEST_SKIP() << "no user nobody on this system";
    const uid_t uid = nobody->pw_uid;
    const gid_t gid = nobody->pw_gid;
    const std::string dir = scratch("peer");
    ::chmod(dir.c_str(), 0755);
    ThreadedServer server(dir);
    ASSERT_EQ(::chmod(server.path.c_str(), 0666), 0);

    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        ::close(out[0]);
        if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) _exit(10);
        SocketClient c(server.path);
        if (!c.ok()) _exit(11);
        c.send(status_line);
        auto answer = c.line(5s);
        const bool closed = c.closed_within(5s);
        const std::string report = (closed ? "closed " : "open ") + answer.value_or("-") + "\n";
        if (::write(out[1], report.data(), report.size()) < 0) _exit(12);
        _exit(0);
    }
    ::close(out[1]);
    std::string report;
    char buf[4096];
    for (ssize_t n; (n = ::read(out[0], buf, sizeof buf)) > 0;)
        report.append(buf, static_cast<std::size_t>(n));
    ::close(out[0]);
    int status = 0;
    ::waitpid(child, &status, 0);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
    EXPECT_EQ(report.rfind("closed ", 0), 0u) << report;
    EXPECT_NE(report.find("\"ok\":false"), std::string::npos) << report;
    EXPECT_NE(report.find("permission denied"), std::string::npos) << report;

    SocketClient own(server.path);  // the owner (root here) is still served
    ASSERT_TRUE(own.send(status_line));
    EXPECT_TRUE(answered_ok(own));
}

}  // namespace
}  // namespace smartcash::daemon
