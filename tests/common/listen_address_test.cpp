// supervisor.metrics_listen: the forms it takes, and the config error for one it does not.
#include "common/listen_address.hpp"

#include <gtest/gtest.h>

#include "common/config.hpp"

namespace smartcash {
namespace {

TEST(ListenAddress, APortAloneIsLoopback) {
    std::string error;
    auto a = parse_listen_address("9464", &error);
    ASSERT_TRUE(a) << error;
    EXPECT_EQ(a->host, "127.0.0.1");
    EXPECT_EQ(a->port, 9464);
    a = parse_listen_address("localhost:80", &error);
    ASSERT_TRUE(a) << error;
    EXPECT_EQ(a->host, "localhost");
    a = parse_listen_address("[::1]:65535", &error);
    ASSERT_TRUE(a) << error;
    EXPECT_EQ(a->host, "::1");
    EXPECT_EQ(a->port, 65535);
}

TEST(ListenAddress, OtherFormsAreRefused) {
    std::string error;
    for (const char* bad : {"0", "65536", "x", ":80", "::1:80", "host:", "127.0.0.1:-1"})
        EXPECT_FALSE(parse_listen_address(bad, &error)) << bad;
}

TEST(ListenAddress, TheAddressOfRankZeroNeedsItsHost) {
    std::string host;
    int port = 0;
    ASSERT_TRUE(parse_host_port("10.0.0.1:29500", &host, &port));
    EXPECT_EQ(host, "10.0.0.1");
    EXPECT_EQ(port, 29500);
    ASSERT_TRUE(parse_host_port("[fe80::1]:1", &host, &port));
    EXPECT_EQ(host, "fe80::1");
    EXPECT_EQ(port, 1);
    for (const char* bad : {"29500", "fe80::1:29500", "h:0", "h:65536", ":29500", "[]:80", "h:"})
        EXPECT_FALSE(parse_host_port(bad, &host, &port)) << bad;
}

TEST(ListenAddress, TheConfigKeyIsOffByDefaultAndCheckedWhenSet) {
    EXPECT_EQ(parse_config("", "d.yaml").supervisor.metrics_listen, "");
    EXPECT_EQ(parse_config("supervisor: {metrics_listen: \"9464\"}\n", "d.yaml")
                  .supervisor.metrics_listen,
              "9464");
    try {
        parse_config("supervisor: {metrics_listen: \"nope:port\"}\n", "d.yaml");
        FAIL() << "accepted a bad address";
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("supervisor.metrics_listen"), std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace smartcash
