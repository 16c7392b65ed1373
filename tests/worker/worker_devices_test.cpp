// `smartcash-worker devices`: the report the supervisor reads once at start, parsed with the
// shared definition, and the short table for people.
#include <fmt/core.h>
#include <torch/version.h>

#include "common/devices_report.hpp"
#include "common/exit_codes.hpp"
#include "worker_process.hpp"

namespace worker_test {
namespace {

struct Output {
    ExitStatus status;
    std::string out, err;
};

Output run_worker(const std::vector<std::string>& args, const std::string& log_base) {
    WorkerProcess p(args, log_base, LaunchOptions{{}, {}, /*channel=*/false});
    Output o;
    o.status = p.wait(120);
    o.out = p.out();
    o.err = p.err();
    return o;
}

class Devices : public WorkerTest {};

TEST_F(Devices, JsonIsTheSharedReportWithAReasonForEveryUnusableDevice) {
    const Output o = run_worker({"devices", "--json"}, log_base("devices"));
    ASSERT_TRUE(o.status.exited && o.status.code == smartcash::exit_code::done)
        << o.status.describe() << "\n"
        << o.err;
    std::string error;
    const auto report = smartcash::devices_report_from_json(Json::parse(o.out), &error);
    ASSERT_TRUE(report) << error << "\n" << o.out;
    EXPECT_EQ(report->torch_version, fmt::format("{}.{}.{}", TORCH_VERSION_MAJOR,
                                                 TORCH_VERSION_MINOR, TORCH_VERSION_PATCH));
    // The exact line the supervisor gets: one JSON object, nothing else on stdout.
    EXPECT_EQ(o.out, smartcash::to_json(*report).dump() + "\n");
    for (const auto* status : {&report->cuda, &report->mps})
        EXPECT_EQ(status->usable, status->why.empty()) << o.out;
#if !defined(SMARTCASH_WITH_CUDA)
    EXPECT_FALSE(report->cuda.usable);
    EXPECT_EQ(report->cuda.why, "this LibTorch was built without CUDA");
#endif
#if !defined(__APPLE__)
    EXPECT_FALSE(report->mps.usable);
    EXPECT_NE(report->mps.why.find("this LibTorch has no MPS"), std::string::npos) << o.out;
#endif
}

TEST_F(Devices, TableNamesEveryDevice) {
    const Output o = run_worker({"devices"}, log_base("devices"));
    ASSERT_TRUE(o.status.exited && o.status.code == smartcash::exit_code::done)
        << o.status.describe() << "\n"
        << o.err;
    EXPECT_NE(o.out.find("LibTorch " + fmt::format("{}.{}.{}", TORCH_VERSION_MAJOR,
                                                   TORCH_VERSION_MINOR, TORCH_VERSION_PATCH)),
              std::string::npos)
        << o.out;
    for (const char* name : {"cpu", "cuda", "mps"})
        EXPECT_NE(o.out.find(name), std::string::npos) << o.out;
}

TEST_F(Devices, ATierOnAnUnusableDeviceIsRefusedWithTheReason) {
#if defined(SMARTCASH_WITH_CUDA)
    GTEST_SKIP() << "this LibTorch has CUDA";
#else
    const std::string config = dir() + "/cuda.yaml";
    write_text(config,
               "model: {backbone: efficientnet_b4, width_multiple: 0.1, depth_multiple: 0.2, "
               "img_size: 64}\n"
               "training: {effective_batch: 4}\n"
               "tiers:\n"
               "  - {name: gpu, device: cuda, micro_batch: 4, device_memory_limit: 1GiB}\n"
               "  - {name: cpu, device: cpu, micro_batch: 4}\n");
    auto p = train(run_dir(), "gpu", {}, config);
    const auto status = p->wait(120);
    EXPECT_TRUE(status.exited && status.code == smartcash::exit_code::config_error)
        << status.describe() << "\n"
        << p->err();
    const auto errors = p->reports_of("error");
    ASSERT_EQ(errors.size(), 1u) << p->err();
    EXPECT_EQ(errors[0].value("kind", ""), "config");
    EXPECT_NE(
        errors[0]
            .value("message", "")
            .find("tier 'gpu' needs device cuda, which cannot be used here: this LibTorch was "
                  "built without CUDA"),
        std::string::npos)
        << errors[0].dump();
#endif
}

TEST_F(Devices, ExtraArgumentsAreAUsageError) {
    const Output o = run_worker({"devices", "cuda"}, log_base("devices"));
    EXPECT_TRUE(o.status.exited && o.status.code == smartcash::exit_code::usage)
        << o.status.describe();
}

}  // namespace
}  // namespace worker_test
