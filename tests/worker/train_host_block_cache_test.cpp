// The host block cache (the minimal tier's CPU allocator): size classes, reuse of freed blocks,
// the cap, LibTorch's raw interface, and an allocation the system refuses. Each test runs in its
// own process (ctest runs one test per process), so installing the allocator stays local to it.
#include <c10/core/CPUAllocator.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include <cstdlib>
#include <new>

#include "worker/device/host_block_cache.hpp"

namespace smartcash::train {
namespace {

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * 1024;

// A float tensor of `bytes` bytes.
torch::Tensor tensor_of(std::size_t bytes) {
    return torch::empty({static_cast<std::int64_t>(bytes / sizeof(float))}, torch::kFloat32);
}

TEST(HostBlockCache, SizeClassesCoverTheRequestWithinAnEighth) {
    EXPECT_EQ(host_block_class(1), 64 * kib);
    EXPECT_EQ(host_block_class(256 * kib), 256 * kib);
    EXPECT_EQ(host_block_class(256 * kib + 1), 320 * kib);
    EXPECT_EQ(host_block_class(mib), mib);
    for (std::size_t n = 300 * kib; n < 512 * mib; n = n * 5 / 4 + 12345) {
        const std::size_t c = host_block_class(n);
        EXPECT_GE(c, n);
        EXPECT_LE(c, n + n / 8 + 64 * kib) << n;
        EXPECT_EQ(host_block_class(c), c) << "a class is its own class: " << n;
        EXPECT_LE(host_block_class(n - 1), c) << "monotone at " << n;
    }
}

TEST(HostBlockCache, AFreedBlockIsReusedAndTheCacheStaysUnderItsCap) {
    install_host_block_cache(10 * mib);
    const auto start = host_block_cache_stats();
    ASSERT_TRUE(start.installed);
    EXPECT_EQ(start.cap, 10 * mib);
    { auto t = tensor_of(4 * mib); }
    auto s = host_block_cache_stats();
    EXPECT_EQ(s.maps, start.maps + 1);
    EXPECT_EQ(s.cached, start.cached + 4 * mib);
    {
        auto t = tensor_of(4 * mib - 100 * kib);  // the same class
        EXPECT_EQ(host_block_cache_stats().hits, s.hits + 1);
        EXPECT_EQ(host_block_cache_stats().maps, s.maps);
        EXPECT_EQ(host_block_cache_stats().live, s.live + 4 * mib);
    }
    { auto a = tensor_of(4 * mib), b = tensor_of(4 * mib), c = tensor_of(4 * mib); }
    s = host_block_cache_stats();
    EXPECT_LE(s.cached, 10 * mib);
    EXPECT_EQ(s.cached, 8 * mib);  // two of the three fit
    EXPECT_GE(s.unmaps, start.unmaps + 1);
    EXPECT_EQ(s.live, start.live);

    install_host_block_cache(4 * mib);  // a lower cap gives the excess back at once
    EXPECT_EQ(host_block_cache_stats().cached, 4 * mib);
    release_host_block_cache();
    EXPECT_EQ(host_block_cache_stats().cached, 0u);
}

TEST(HostBlockCache, TensorsComputeAsBeforeAndTheRawInterfaceWorks) {
    install_host_block_cache(64 * mib);
    auto a = torch::ones({1024, 1024});               // 4 MiB, from the cache
    auto b = torch::arange(1, 101, torch::kFloat64);  // small, from the heap
    EXPECT_DOUBLE_EQ((a * 2).sum().item<double>(), 2.0 * 1024 * 1024);
    EXPECT_DOUBLE_EQ(b.sum().item<double>(), 5050.0);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data_ptr()) % 64, 0u);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data_ptr()) % 64, 0u);
    // Some kernels allocate through raw_allocate()/raw_deallocate(): context == data pointer.
    c10::Allocator* cpu = c10::GetCPUAllocator();
    for (std::size_t n : {std::size_t{100}, 3 * mib}) {
        void* p = cpu->raw_allocate(n);
        ASSERT_NE(p, nullptr);
        static_cast<char*>(p)[n - 1] = 1;
        cpu->raw_deallocate(p);
    }
    auto grad_input = torch::randn({2, 16, 64, 64}, torch::requires_grad());
    auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 32, 3).padding(1));
    conv(grad_input).pow(2).mean().backward();
    EXPECT_TRUE(grad_input.grad().isfinite().all().item<bool>());
}

TEST(HostBlockCache, ARefusedMappingEmptiesTheCacheThenThrowsBadAlloc) {
#if !defined(__linux__)
    GTEST_SKIP() << "RLIMIT_AS is enforced on Linux only (macOS accepts it and ignores it)";
#endif
    EXPECT_EXIT(
        {
            install_host_block_cache(64 * mib);
            { auto t = tensor_of(16 * mib); }
            if (host_block_cache_stats().cached != 16 * mib) std::exit(2);
            rlimit limit{};
            getrlimit(RLIMIT_AS, &limit);
            // Room for what the process has mapped (LibTorch, thread stacks), not for 16 GiB more.
            limit.rlim_cur = 8ull << 30;
            setrlimit(RLIMIT_AS, &limit);
            try {
                auto big = tensor_of(std::size_t{16} << 30);
                std::exit(big.defined() ? 3 : 6);
            } catch (const std::bad_alloc&) {
            } catch (const c10::Error& e) {
                if (std::string(e.what()).find("bad_alloc") == std::string::npos) std::exit(4);
            }
            std::exit(host_block_cache_stats().cached == 0 ? 0 : 5);
        },
        ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace smartcash::train
