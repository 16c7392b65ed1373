// The control socket of a real smartcashd training the tiny model with the real worker: every
// command over the socket, and hostile clients (random bytes, truncated JSON, a 1 MiB line, 200
// clients at once, a watcher that never reads), after which the supervisor still answers and
// training has kept making progress.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "common/control.hpp"
#include "common/journal_events.hpp"
#include "common/run_dir.hpp"
#include "ctl/control_client.hpp"
#include "tests/daemon/socket_client.hpp"
#include "tests/integration/harness.hpp"

namespace smartcash::integration {
namespace {

namespace cmd = protocol::control_cmd;
using test::SocketClient;

// A loopback port free a moment ago (the kernel hands out ephemeral ports in turn).
unsigned short free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof addr;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &size);
    ::close(fd);
    return ntohs(addr.sin_port);
}

// GET /metrics from the supervisor's HTTP listener; the whole response.
std::string http_metrics(unsigned short port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string response;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        const std::string request = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n";
        if (::send(fd, request.data(), request.size(), 0) > 0) {
            char buf[4096];
            for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
                response.append(buf, static_cast<std::size_t>(n));
        }
    }
    ::close(fd);
    return response;
}

// The base fixture with a long phase 2, so the job is still training when the test is done, and
// metrics over HTTP on `port`.
std::string long_fixture(const Scratch& s, unsigned short port) {
    std::string text = slurp(fixture("supervisor_base.yaml"));
    const std::string section = "\nsupervisor:\n";
    const auto sup = text.find(section);
    EXPECT_NE(sup, std::string::npos);
    if (sup != std::string::npos)
        text.insert(sup + section.size(), "  metrics_listen: \"" + std::to_string(port) + "\"\n");
    const std::string from = "phase2: {epochs: 3,";
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos);
    if (at != std::string::npos) text.replace(at, from.size(), "phase2: {epochs: 300,");
    const std::string path = s.file("long.yaml");
    std::ofstream(path) << text;
    return path;
}

Json request(const Scratch& s, const protocol::ControlRequestLine& r) {
    std::string error;
    auto answer =
        daemon::control_request(run_dir::socket(s.run()), protocol::to_json(r), &error, 10s);
    EXPECT_TRUE(answer) << error;
    return answer.value_or(Json::object());
}

Json request(const Scratch& s, const char* command) {
    return request(s, protocol::ControlRequestLine{command, std::nullopt, std::nullopt});
}

std::int64_t step_now(const Scratch& s) {
    return protocol::status_from_json(request(s, cmd::status)).step;
}

TEST(IntegrationSocket, EveryCommandAndHostileClientsWhileTrainingGoesOn) {
    Scratch s("control-socket");
    const unsigned short port = free_port();
    Daemon d(s, long_fixture(s, port), SMARTCASH_WORKER_PATH);
    ASSERT_TRUE(d.wait_for_event([](const Json& e) { return e.value("event", "") == "checkpoint"; },
                                 job_timeout))
        << d.stderr_text();
    const std::string sock = run_dir::socket(s.run());

    // status, with the at-a-glance figures.
    const protocol::StatusView before = protocol::status_from_json(request(s, cmd::status));
    EXPECT_EQ(before.state, "running");
    EXPECT_EQ(before.epochs, 301);
    EXPECT_EQ(before.phases, 2);
    EXPECT_EQ(before.tier_order, (std::vector<std::string>{"big", "small"}));
    EXPECT_EQ(before.tier_index, 0);
    EXPECT_GT(before.steps_per_epoch.value_or(0), 0);
    EXPECT_TRUE(before.training_phase);

    // smartcashctl watch, not on a terminal: plain lines until the supervisor exits.
    std::string watched;
    int watch_exit = -1;
    std::thread ctl_watch([&] {
        watch_exit = run_program({SMARTCASHCTL_PATH, "--run-dir", s.run(), "watch"}, &watched);
    });

    // watch: a reader, and one that never reads.
    SocketClient watcher(sock), lazy(sock);
    ASSERT_TRUE(watcher.send("{\"cmd\":\"watch\"}\n"));
    ASSERT_TRUE(lazy.send("{\"cmd\":\"watch\"}\n"));
    auto first = watcher.line(10s);
    ASSERT_TRUE(first);
    Json first_json = Json::parse(*first, nullptr, false);
    EXPECT_EQ(first_json.value(protocol::watch_kind_key, ""), protocol::watch_kind::status);

    // Hostile clients.
    std::mt19937 rng(7);
    {
        std::string noise(256 * 1024, '\0');
        for (auto& c : noise) c = static_cast<char>(rng());
        SocketClient c(sock);
        c.send(noise);  // answered with errors line by line, or closed at an overlong line
    }
    {
        SocketClient c(sock);
        ASSERT_TRUE(c.send("{\"cmd\":\"sta\n"));
        auto answer = c.line(10s);
        ASSERT_TRUE(answer);
        EXPECT_FALSE(Json::parse(*answer).value("ok", true)) << *answer;
        c.send("{\"cmd\":");  // and leave mid-line
    }
    {
        SocketClient c(sock);
        c.send(std::string(1 << 20, '{') + "\n");
        auto answer = c.line(10s);
        ASSERT_TRUE(answer);
        EXPECT_NE(answer->find("longer than"), std::string::npos) << *answer;
        EXPECT_TRUE(c.closed_within(10s));
    }
    {
        std::vector<SocketClient> many;
        for (int i = 0; i < 200; ++i) {
            many.emplace_back(sock);
            ASSERT_TRUE(many.back().ok()) << "client " << i;
            ASSERT_TRUE(many.back().send("{\"cmd\":\"status\"}\n"));
        }
        int answered = 0;
        for (auto& c : many) {
            auto answer = c.line(20s);
            answered += answer && Json::parse(*answer).value("ok", false) ? 1 : 0;
            c.reset();
        }
        EXPECT_EQ(answered, 200);
    }

    // history and metrics.
    protocol::ControlRequestLine last_three{cmd::history, std::nullopt, 3};
    const auto recent = protocol::history_from_json(request(s, last_three));
    ASSERT_EQ(recent.events.size(), 3u);
    for (const auto& e : recent.events) {
        EXPECT_TRUE(e.contains("t")) << e.dump();
        std::string error;
        EXPECT_TRUE(protocol::journal_event_from_json(e, &error)) << error;
    }
    const auto all = protocol::history_from_json(request(s, cmd::history));
    ASSERT_FALSE(all.events.empty());
    EXPECT_EQ(all.events.front().value("event", ""), "start");
    const auto metrics = protocol::metrics_from_json(request(s, cmd::metrics));
    EXPECT_TRUE(metrics.ok);
    EXPECT_NE(metrics.text.find("\nsmartcash_up 1\n"), std::string::npos) << metrics.text;
    EXPECT_NE(metrics.text.find("smartcash_tier_index{tier=\"big\"} 0"), std::string::npos)
        << metrics.text;

    // The same text over HTTP (supervisor.metrics_listen).
    const std::string http = http_metrics(port);
    EXPECT_EQ(http.rfind("HTTP/1.1 200 OK", 0), 0u) << http;
    EXPECT_NE(http.find("\nsmartcash_up 1\n"), std::string::npos) << http;

    // checkpoint: accepted (the worker writes one after its current micro-batch).
    EXPECT_TRUE(request(s, cmd::checkpoint).value("ok", false));

    // Training kept going, and the watcher saw it: a checkpoint event and a newer step.
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (step_now(s) <= before.step && std::chrono::steady_clock::now() < deadline) {
        auto l = watcher.line(1s);  // wait on the stream rather than sleep
        (void)l;
    }
    EXPECT_GT(step_now(s), before.step);
    bool saw_checkpoint = false, saw_newer = false;
    const auto seen_by = std::chrono::steady_clock::now() + 30s;
    while (!(saw_checkpoint && saw_newer) && std::chrono::steady_clock::now() < seen_by) {
        auto l = watcher.line(5s);
        if (!l) break;
        Json j = Json::parse(*l, nullptr, false);
        const std::string kind = j.value(protocol::watch_kind_key, "");
        if (kind == protocol::watch_kind::event)
            saw_checkpoint |= j[protocol::watch_event_key].value("event", "") == "checkpoint";
        if (kind == protocol::watch_kind::status)
            saw_newer |= j.value("step", std::int64_t{-1}) > before.step;
    }
    EXPECT_TRUE(saw_checkpoint);
    EXPECT_TRUE(saw_newer);

    // smartcashctl's reading commands.
    std::string out;
    EXPECT_EQ(run_program({SMARTCASHCTL_PATH, "--run-dir", s.run(), "history"}, &out), 0);
    EXPECT_EQ(out.rfind("TIME", 0), 0u) << out;
    EXPECT_NE(out.find("checkpoint"), std::string::npos) << out;
    out.clear();
    EXPECT_EQ(run_program({SMARTCASHCTL_PATH, "--run-dir", s.run(), "metrics"}, &out), 0);
    EXPECT_NE(out.find("# TYPE smartcash_step gauge\n"), std::string::npos) << out;
    out.clear();
    EXPECT_EQ(run_program({SMARTCASHCTL_PATH, "--run-dir", s.run(), "status"}, &out), 0);
    EXPECT_NE(out.find("epoch "), std::string::npos) << out;
    EXPECT_NE(out.find("ETA:"), std::string::npos) << out;

    // stop: the supervisor checkpoints the job and exits 3; watchers see the socket close.
    EXPECT_TRUE(request(s, cmd::stop).value("ok", false));
    EXPECT_EQ(d.wait(60s), 3) << d.stderr_text();
    EXPECT_TRUE(watcher.closed_within(10s));
    ctl_watch.join();
    EXPECT_EQ(watch_exit, 0) << watched;
    EXPECT_NE(watched.find("step "), std::string::npos) << watched;
    EXPECT_NE(watched.find("job stopped"), std::string::npos) << watched;
    EXPECT_EQ(watched.find("checkpoint (step)"), std::string::npos) << "detail without -v";

    // No supervisor: status comes from state.json, exit 3.
    out.clear();
    EXPECT_EQ(run_program({SMARTCASHCTL_PATH, "--run-dir", s.run(), "status"}, &out), 3);
    EXPECT_NE(out.find("supervisor: not running"), std::string::npos) << out;
}

}  // namespace
}  // namespace smartcash::integration
