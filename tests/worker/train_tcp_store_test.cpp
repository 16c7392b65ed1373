// The rendezvous store opens on any LibTorch: with libuv where the build has it, with the classic
// backend where it does not (PyTorch 2.4 and later ask for libuv by default, and builds without it
// refuse the default).
#include <gtest/gtest.h>

#include "worker/distributed/process_group.hpp"
#include "worker/distributed/tcp_store.hpp"

namespace smartcash::dist {
namespace {

TEST(TcpStore, TheRefusalOfABuildWithoutLibuvIsRecognised) {
    // The text LibTorch 2.4 to 2.14 throws from the TCPStore constructor.
    EXPECT_TRUE(says_libuv_missing(
        "use_libuv was requested but PyTorch was built without libuv support, run with "
        "USE_LIBUV=0 to disable it."));
    EXPECT_TRUE(says_libuv_missing("libuv TCPStore backend is not available in this build"));
    // Other store failures are not mistaken for it: they must reach the caller.
    EXPECT_FALSE(
        says_libuv_missing("The server socket has failed to listen on any local network "
                           "address. port: 29500, useIpv6: 0, code: -98, name: "
                           "EADDRINUSE, message: address already in use"));
    EXPECT_FALSE(
        says_libuv_missing("Timed out after 30 seconds waiting for clients. 1/2 "
                           "clients joined."));
}

TEST(TcpStore, AServerAndAClientExchangeAKeyOnThisBuild) {
    if (!c10d_available()) GTEST_SKIP() << "this build has no c10d (libgloo-dev missing)";
    std::string backend;
    ASSERT_NO_THROW(backend = probe_tcp_store_backend());
    EXPECT_TRUE(backend == "libuv" || backend == "classic") << backend;
    // A second store in the same process takes the backend the first one learned.
    EXPECT_EQ(probe_tcp_store_backend(), backend);
}

}  // namespace
}  // namespace smartcash::dist
