// GET /metrics over HTTP (daemon/shell/metrics_http.cpp), hosted in the test process on a free
// loopback port: the exposition with Prometheus' content type, 404 elsewhere, 405 for other
// methods, a client that says nothing does not hold up the others, and idle clients holding
// every slot do not keep a scrape out.
#include "daemon/shell/metrics_http.hpp"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <thread>
#include <vector>

namespace smartcash::daemon {
namespace {

using namespace std::chrono_literals;

int connect_loopback(unsigned short port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

// Sends `request` and reads the response until the server closes (5 s at most).
std::string exchange(unsigned short port, const std::string& request) {
    const int fd = connect_loopback(port);
    if (fd < 0) return "";
    if (::send(fd, request.data(), request.size(), 0) < 0) return "";
    std::string response;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    char buf[4096];
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        response.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return response;
}

class MetricsHttpServed : public ::testing::Test {
  protected:
    void SetUp() override {
        auto error = m_http.listen(ListenAddress{"127.0.0.1", 0});
        ASSERT_FALSE(error) << *error;
        port = m_http.port();
        ASSERT_GT(port, 0);
        m_thread = std::thread([this] { m_io.run(); });
    }
    void TearDown() override {
        boost::asio::post(m_io, [this] {
            m_http.close();
            m_io.stop();
        });
        if (m_thread.joinable()) m_thread.join();
    }
    unsigned short port = 0;

  private:
    boost::asio::io_context m_io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> m_guard{
        m_io.get_executor()};
    MetricsHttp m_http{m_io, [] { return std::string("# HELP smartcash_up x\nsmartcash_up 1\n"); }};
    std::thread m_thread;
};

TEST_F(MetricsHttpServed, GetMetricsGivesTheExposition) {
    const int silent = connect_loopback(port);  // says nothing, holds nothing up
    ASSERT_GE(silent, 0);
    const std::string r = exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    ::close(silent);
    EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
    EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << r;
    EXPECT_NE(r.find("\r\n\r\n# HELP smartcash_up x\nsmartcash_up 1\n"), std::string::npos) << r;
}

TEST_F(MetricsHttpServed, OtherPathsAndMethodsAreRefused) {
    EXPECT_EQ(exchange(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").rfind("HTTP/1.1 404", 0), 0u);
    EXPECT_EQ(exchange(port, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
                  .rfind("HTTP/1.1 405", 0),
              0u);
    EXPECT_EQ(exchange(port, "garbage\r\n\r\n").find("smartcash_up"), std::string::npos);
    // A refusal cost only that connection: the server still answers, so the empty answer above
    // was the garbage's own, not a server that had died.
    const std::string after = exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(after.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << after;
    EXPECT_NE(after.find("\r\n\r\n# HELP smartcash_up x\nsmartcash_up 1\n"), std::string::npos)
        << after;
}

// Whether the server closed the connection (EOF or reset) before `timeout`.
bool closed_within(int fd, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[4096];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(std::max<long long>(0, left.count()))) <= 0)
            return false;
        if (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0) return true;
    }
}

// Every slot held by a client that connected and says nothing (a port scanner, a stuck scraper):
// a scrape is still answered promptly, not refused until the idle clients' deadline, and the
// client idle the longest (the first) gave its slot up for it.
TEST_F(MetricsHttpServed, WhenEverySlotIsHeldByIdleClientsTheIdlestMakesRoom) {
    std::vector<int> idle;
    for (std::size_t i = 0; i < MetricsHttp::max_connections; ++i) {
        idle.push_back(connect_loopback(port));
        ASSERT_GE(idle.back(), 0) << "client " << i;
    }
    const auto start = std::chrono::steady_clock::now();
    const std::string r = exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << "the scrape was not served: " << r;
    EXPECT_NE(r.find("smartcash_up 1"), std::string::npos) << r;
    EXPECT_LT(took, MetricsHttp::deadline / 2)
        << "served only once an idle client's deadline passed";
    EXPECT_TRUE(closed_within(idle.front(), 5s)) << "the idlest client kept its slot";
    int still_open = 0;
    for (std::size_t i = 1; i < idle.size(); ++i) still_open += closed_within(idle[i], 0ms) ? 0 : 1;
    EXPECT_EQ(still_open, static_cast<int>(idle.size()) - 1) << "more clients lost their slot";
    for (int fd : idle) ::close(fd);
}

TEST(MetricsHttp, AnAddressInUseIsAnError) {
    boost::asio::io_context io;
    MetricsHttp first(io, [] { return std::string(); });
    ASSERT_FALSE(first.listen(ListenAddress{"127.0.0.1", 0}));
    MetricsHttp second(io, [] { return std::string(); });
    auto error = second.listen(ListenAddress{"127.0.0.1", first.port()});
    ASSERT_TRUE(error);
    EXPECT_NE(error->find("metrics_listen 127.0.0.1:"), std::string::npos) << *error;
}

}  // namespace
}  // namespace smartcash::daemon
