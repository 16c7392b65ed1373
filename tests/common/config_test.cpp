#include "common/config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/atomic_file.hpp"

namespace smartcash {
namespace {

/// Parses `yaml` expecting a ConfigError; returns it (a default one after a test failure).
ConfigError parse_error(const std::string& yaml, const std::string& name = "test.yaml") {
    try {
        parse_config(yaml, name);
    } catch (const ConfigError& e) {
        return e;
    }
    ADD_FAILURE() << "no ConfigError for:\n" << yaml;
    return ConfigError("", 0, 0, "", "");
}

struct ErrorCase {
    const char* yaml;
    int line;
    int column;
    const char* key_path;
    const char* message_part;
};

void expect_error(const ErrorCase& c) {
    ConfigError e = parse_error(c.yaml);
    SCOPED_TRACE(std::string("yaml:\n") + c.yaml + "error: " + e.what());
    EXPECT_EQ(e.file(), "test.yaml");
    EXPECT_EQ(e.line(), c.line);
    EXPECT_EQ(e.column(), c.column);
    EXPECT_EQ(e.key_path(), c.key_path);
    EXPECT_NE(std::string(e.what()).find(c.message_part), std::string::npos);
}

TEST(Config, EmptyFileGivesDefaultTiers) {
    Config c = parse_config("", "empty.yaml");
    ASSERT_EQ(c.tiers.size(), 3u);
    EXPECT_EQ(c.tiers[0].name, "accelerated");
    EXPECT_EQ(c.tiers[0].device, Device::auto_);
    EXPECT_EQ(c.tiers[0].micro_batch, 4);
    EXPECT_EQ(c.tiers[0].threads, 4);
    EXPECT_EQ(c.tiers[0].memory_limit, 12ull << 30);
    EXPECT_EQ(c.tiers[0].cleanup, Cleanup::aggressive);
    EXPECT_EQ(c.tiers[0].env.at("PYTORCH_MPS_HIGH_WATERMARK_RATIO"), "0.7");
    EXPECT_EQ(c.tiers[0].env.at("PYTORCH_MPS_LOW_WATERMARK_RATIO"), "0.5");
    EXPECT_EQ(c.tiers[0].accumulation, 4);
    EXPECT_EQ(c.tiers[1].name, "cpu");
    EXPECT_EQ(c.tiers[1].device, Device::cpu);
    EXPECT_EQ(c.tiers[1].micro_batch, 2);
    EXPECT_EQ(c.tiers[1].threads, 2);
    EXPECT_EQ(c.tiers[1].memory_limit, 8ull << 30);
    EXPECT_EQ(c.tiers[1].accumulation, 8);
    EXPECT_EQ(c.tiers[2].name, "minimal");
    EXPECT_EQ(c.tiers[2].micro_batch, 1);
    EXPECT_EQ(c.tiers[2].threads, 2);
    EXPECT_EQ(c.tiers[2].memory_limit, 4ull << 30);
    EXPECT_TRUE(c.tiers[2].activation_checkpointing);
    EXPECT_EQ(c.tiers[2].cleanup, Cleanup::extreme);
    EXPECT_EQ(c.tiers[2].accumulation, 16);
    EXPECT_EQ(c.data.dataset, "synthetic");
    EXPECT_EQ(c.training.effective_batch, 16);
}

TEST(Config, ReadsEveryKindOfValue) {
    Config c = parse_config(R"(
model: {backbone: cspdarknet, width_multiple: 0.5, depth_multiple: 0.33, img_size: 320}
data:
  bad_labels: skip
  augment: {flip: 0}
training:
  effective_batch: 12
  deterministic: false
  phase1: {epochs: 3, lr: {neck: 2e-3}}
  loss: {obj_balance: [1, 2, 3], layer_weights: {layer_3: 2}}
tiers:
  - {name: big, device: cuda, micro_batch: 6, threads: 3, memory_limit: 1.5GiB}
  - {name: small, micro_batch: 4, env: {OMP_NUM_THREADS: 1}}
supervisor:
  poll_interval: 100ms
  min_available: 1GB
  promotion: {stable_for: 1h30m, enabled: no}
)",
                            "t.yaml");
    EXPECT_EQ(c.model.backbone, Backbone::cspdarknet);
    EXPECT_DOUBLE_EQ(c.model.width_multiple, 0.5);
    EXPECT_DOUBLE_EQ(c.model.depth_multiple, 0.33);
    EXPECT_EQ(c.model.img_size, 320);
    EXPECT_DOUBLE_EQ(c.model.drop_connect, 0.2);  // default kept
    EXPECT_EQ(c.data.bad_labels, BadLabelPolicy::skip);
    EXPECT_DOUBLE_EQ(c.data.augment.flip, 0.0);
    EXPECT_DOUBLE_EQ(c.data.augment.hsv_s, 0.5);
    EXPECT_FALSE(c.training.deterministic);
    EXPECT_EQ(c.training.phase1.epochs, 3);
    EXPECT_DOUBLE_EQ(c.training.phase1.lr.neck, 2e-3);
    EXPECT_DOUBLE_EQ(c.training.phase1.lr.head, 1e-3);  // default kept
    EXPECT_EQ(c.training.loss.obj_balance, (std::vector<double>{1, 2, 3}));
    EXPECT_DOUBLE_EQ(c.training.loss.layer_weights.at("layer_3"), 2.0);
    EXPECT_DOUBLE_EQ(c.training.loss.layer_weights.at("layer_1"), 1.0);
    ASSERT_EQ(c.tiers.size(), 2u);
    EXPECT_EQ(c.tiers[0].device, Device::cuda);
    EXPECT_EQ(c.tiers[0].memory_limit, 3ull << 29);
    EXPECT_EQ(c.tiers[0].accumulation, 2);
    EXPECT_EQ(c.tiers[1].device, Device::cpu);
    EXPECT_EQ(c.tiers[1].memory_limit, 0u);
    EXPECT_EQ(c.tiers[1].accumulation, 3);
    EXPECT_EQ(c.tiers[1].env.at("OMP_NUM_THREADS"), "1");
    EXPECT_DOUBLE_EQ(c.supervisor.poll_interval_seconds, 0.1);
    EXPECT_EQ(c.supervisor.min_available, 1000000000u);
    EXPECT_DOUBLE_EQ(c.supervisor.promotion.stable_seconds, 5400);
    EXPECT_FALSE(c.supervisor.promotion.enabled);
}

TEST(Config, UnknownKeyListsValidKeys) {
    ConfigError e = parse_error("model:\n  backbone: cspdarknet\n  widht_multiple: 0.5\n");
    EXPECT_EQ(e.line(), 3);
    EXPECT_EQ(e.column(), 3);
    EXPECT_EQ(e.key_path(), "model.widht_multiple");
    std::string what = e.what();
    EXPECT_NE(what.find("did you mean 'width_multiple'"), std::string::npos) << what;
    EXPECT_NE(what.find("backbone, width_multiple, depth_multiple, img_size, drop_connect"),
              std::string::npos)
        << what;
    EXPECT_EQ(what.rfind("test.yaml:3:3: model.widht_multiple: unknown key", 0), 0u) << what;
}

TEST(Config, UnknownNestedKeyHasFullPath) {
    expect_error({"training:\n  loss:\n    layer_weights:\n      layer_1: 1\n      layer_4: 2\n", 5,
                  7, "training.loss.layer_weights.layer_4", "layer_1, layer_2, layer_3"});
    expect_error({"modle:\n  img_size: 320\n", 1, 1, "modle",
                  "valid keys at the top level are: model, data, training, tiers, supervisor"});
    expect_error({"tiers:\n  - name: a\n    gpu: true\n", 3, 5, "tiers[0].gpu", "unknown key"});
}

TEST(Config, WrongTypeNamesExpectedAndGot) {
    expect_error({"training:\n  effective_batch: abc\n", 2, 3, "training.effective_batch",
                  "expected an integer, got 'abc'"});
    expect_error({"model:\n  img_size: 320.5\n", 2, 3, "model.img_size",
                  "expected an integer, got '320.5'"});
    expect_error({"model:\n  width_multiple: wide\n", 2, 3, "model.width_multiple",
                  "expected a number, got 'wide'"});
    expect_error({"training:\n  deterministic: maybe\n", 2, 3, "training.deterministic",
                  "expected true or false, got 'maybe'"});
    expect_error({"model: [1, 2]\n", 1, 1, "model", "expected a map with keys backbone"});
    expect_error({"training:\n  seed: -1\n", 2, 3, "training.seed",
                  "expected a non-negative integer, got '-1'"});
    expect_error({"tiers:\n  name: a\n", 1, 1, "tiers", "expected a list of tiers, got a map"});
}

TEST(Config, BadSizeAndDuration) {
    expect_error({"tiers:\n  - name: a\n    memory_limit: 12XB\n", 3, 5, "tiers[0].memory_limit",
                  "unknown unit; expected a byte size such as"});
    expect_error(
        {"supervisor:\n  min_available: lots\n", 2, 3, "supervisor.min_available", "'lots'"});
    expect_error({"supervisor:\n  poll_interval: soon\n", 2, 3, "supervisor.poll_interval",
                  "expected a duration such as 30s, 250ms"});
    expect_error({"supervisor:\n  heartbeat_timeout: 0s\n", 2, 3, "supervisor.heartbeat_timeout",
                  "must be > 0"});
}

TEST(Config, BadEnumListsValidValues) {
    expect_error({"tiers:\n  - name: fast\n    device: gpu\n", 3, 5, "tiers[0].device",
                  "expected one of auto, cpu, cuda, mps, got 'gpu'"});
    expect_error({"model:\n  backbone: resnet50\n", 2, 3, "model.backbone",
                  "expected one of efficientnet_b4, cspdarknet, got 'resnet50'"});
    expect_error({"tiers:\n  - name: a\n    cleanup: max\n", 3, 5, "tiers[0].cleanup",
                  "expected one of normal, aggressive, extreme, got 'max'"});
    expect_error({"data:\n  bad_labels: ignore\n", 2, 3, "data.bad_labels",
                  "expected one of fail, skip, got 'ignore'"});
}

TEST(Config, AccumulationMustBeWhole) {
    const std::string yaml =
        "# demo\n"                 // 1
        "training:\n"              // 2
        "  effective_batch: 16\n"  // 3
        "tiers:\n"                 // 4
        "  - name: accelerated\n"  // 5
        "    device: auto\n"       // 6
        "    micro_batch: 8\n"     // 7
        "    threads: 2\n"         // 8
        "  - name: cpu\n"          // 9
        "    device: cpu\n"        // 10
        "    threads: 2\n"         // 11
        "    micro_batch: 3\n";    // 12
    ConfigError e = parse_error(yaml, "demo.yaml");
    EXPECT_STREQ(e.what(),
                 "demo.yaml:12:5: tiers[1].micro_batch: 3 does not divide training.effective_batch "
                 "16 (accumulation must be a whole number)");
    EXPECT_EQ(e.line(), 12);
    EXPECT_EQ(e.column(), 5);
    EXPECT_EQ(e.key_path(), "tiers[1].micro_batch");
}

TEST(Config, EffectiveBatchMustSuitDefaultTiers) {
    expect_error({"training:\n  effective_batch: 6\n", 2, 3, "training.effective_batch",
                  "6 is not a multiple of micro_batch 4 of the default tier 'accelerated'"});
}

TEST(Config, RangeChecks) {
    const ErrorCase cases[] = {
        {"model:\n  img_size: 100\n", 2, 3, "model.img_size", "not a multiple of 32"},
        {"model:\n  img_size: 32\n", 2, 3, "model.img_size", "must be >= 64"},
        {"model:\n  width_multiple: 0\n", 2, 3, "model.width_multiple", "must be > 0"},
        {"tiers:\n  - name: a\n    micro_batch: 0\n", 3, 5, "tiers[0].micro_batch", "must be >= 1"},
        {"tiers:\n  - name: a\n    threads: 0\n", 3, 5, "tiers[0].threads", "must be >= 1"},
        {"supervisor:\n  soft_limit_fraction: 0\n", 2, 3, "supervisor.soft_limit_fraction",
         "must be in (0, 1]"},
        {"supervisor:\n  promotion:\n    headroom: 1.5\n", 3, 5, "supervisor.promotion.headroom",
         "must be in (0, 1]"},
        {"training:\n  phase1: {epochs: -1}\n", 2, 12, "training.phase1.epochs", "must be >= 0"},
        {"training:\n  phase1:\n    epochs: 0\n  phase2:\n    epochs: 0\n", 5, 5,
         "training.phase2.epochs", "must be at least 1"},
        {"training:\n  phase2:\n    lr:\n      head: -0.1\n", 4, 7, "training.phase2.lr.head",
         "must be >= 0"},
        {"training:\n  effective_batch: 0\n", 2, 3, "training.effective_batch", "must be >= 1"},
        {"training:\n  keep_checkpoints: 0\n", 2, 3, "training.keep_checkpoints", "must be >= 1"},
        {"training:\n  max_nonfinite_steps: 0\n", 2, 3, "training.max_nonfinite_steps",
         "must be >= 1"},
        {"training:\n  loss:\n    obj_balance: [1, 2]\n", 3, 5, "training.loss.obj_balance",
         "exactly 3 numbers"},
        {"training:\n  loss:\n    obj_balance: [1, 2, x]\n", 3, 25, "training.loss.obj_balance[2]",
         "expected a number, got 'x'"},
        {"supervisor:\n  backoff_floor: 10s\n  backoff_cap: 5s\n", 3, 3, "supervisor.backoff_cap",
         "below supervisor.backoff_floor"},
    };
    for (const ErrorCase& c : cases) expect_error(c);
}

TEST(Config, TierListChecks) {
    expect_error({"tiers: []\n", 1, 1, "tiers", "at least one tier"});
    expect_error({"tiers:\n  - name: a\n  - name: b\n  - name: a\n", 4, 5, "tiers[2].name",
                  "duplicate tier name 'a' (first used at line 2)"});
    expect_error({"tiers:\n  - name: \"\"\n", 2, 5, "tiers[0].name", "must not be empty"});
    expect_error({"tiers:\n  - device: cpu\n", 2, 5, "tiers[0]", "needs a name"});
    expect_error({"tiers:\n  - name: my tier\n", 2, 5, "tiers[0].name", "only letters, digits"});
}

TEST(Config, MpsWatermarksMustBeOrdered) {
    expect_error(
        {"tiers:\n"
         "  - name: mps\n"
         "    env:\n"
         "      PYTORCH_MPS_HIGH_WATERMARK_RATIO: \"0.5\"\n"
         "      PYTORCH_MPS_LOW_WATERMARK_RATIO: \"0.8\"\n",
         5, 7, "tiers[0].env.PYTORCH_MPS_LOW_WATERMARK_RATIO",
         "0.8 must not exceed PYTORCH_MPS_HIGH_WATERMARK_RATIO 0.5"});
    expect_error(
        {"tiers:\n"
         "  - name: mps\n"
         "    env:\n"
         "      PYTORCH_MPS_HIGH_WATERMARK_RATIO: high\n",
         4, 7, "tiers[0].env.PYTORCH_MPS_HIGH_WATERMARK_RATIO", "expected a number"});
    // PyTorch's MPS allocator accepts a high ratio of at most 2 (twice the recommended working
    // set), and takes 1.4 for the low one when it is left out: a lower high ratio needs both.
    expect_error(
        {"tiers:\n"
         "  - name: mps\n"
         "    env:\n"
         "      PYTORCH_MPS_HIGH_WATERMARK_RATIO: \"2.5\"\n"
         "      PYTORCH_MPS_LOW_WATERMARK_RATIO: \"1.0\"\n",
         4, 7, "tiers[0].env.PYTORCH_MPS_HIGH_WATERMARK_RATIO",
         "2.5 is above 2, the most PyTorch's MPS allocator accepts"});
    expect_error(
        {"tiers:\n"
         "  - name: mps\n"
         "    env:\n"
         "      PYTORCH_MPS_HIGH_WATERMARK_RATIO: \"0.7\"\n",
         4, 7, "tiers[0].env.PYTORCH_MPS_HIGH_WATERMARK_RATIO",
         "0.7 is below PyTorch's default low watermark ratio 1.4: set "
         "PYTORCH_MPS_LOW_WATERMARK_RATIO too (at most 0.7)"});
    expect_error({"tiers:\n  - name: a\n    env: {PYTORCH_MPS_HIGH_WATERMARK_RATIO: \"0\"}\n", 3,
                  11, "tiers[0].env.PYTORCH_MPS_HIGH_WATERMARK_RATIO",
                  "below PyTorch's default low watermark ratio"});
    expect_error({"tiers:\n  - name: a\n    env: {PYTORCH_MPS_LOW_WATERMARK_RATIO: \"1.8\"}\n", 3,
                  11, "tiers[0].env.PYTORCH_MPS_LOW_WATERMARK_RATIO",
                  "1.8 is above PyTorch's default high watermark ratio 1.7: set "
                  "PYTORCH_MPS_HIGH_WATERMARK_RATIO too"});
    // The bounds themselves are fine, and so is a high ratio at or above the default low one.
    Config bounds = parse_config(
        "tiers:\n  - name: a\n    env: {PYTORCH_MPS_HIGH_WATERMARK_RATIO: \"2.0\", "
        "PYTORCH_MPS_LOW_WATERMARK_RATIO: \"0\"}\n  - name: b\n    env: "
        "{PYTORCH_MPS_HIGH_WATERMARK_RATIO: \"1.4\"}\n  - name: c\n    env: "
        "{PYTORCH_MPS_HIGH_WATERMARK_RATIO: \"0\", PYTORCH_MPS_LOW_WATERMARK_RATIO: \"0\"}\n",
        "t.yaml");
    EXPECT_EQ(bounds.tiers[1].env.at("PYTORCH_MPS_HIGH_WATERMARK_RATIO"), "1.4");

    // Equal ratios and one ratio alone are fine.
    Config c = parse_config(
        "tiers:\n  - name: a\n    env: {PYTORCH_MPS_HIGH_WATERMARK_RATIO: 0.6, "
        "PYTORCH_MPS_LOW_WATERMARK_RATIO: 0.6}\n  - name: b\n    env: "
        "{PYTORCH_MPS_LOW_WATERMARK_RATIO: 0.9}\n",
        "t.yaml");
    EXPECT_EQ(c.tiers[0].env.at("PYTORCH_MPS_LOW_WATERMARK_RATIO"), "0.6");
}

TEST(Config, DeviceMemoryLimitCapsAnAcceleratorTier) {
    Config c = parse_config(
        "tiers:\n"
        "  - {name: gpu, device: cuda, device_memory_limit: 1.5GiB}\n"
        "  - {name: mac, device: mps, memory_limit: 8GiB, device_memory_limit: 6GiB}\n"
        "  - {name: any, device: auto, device_memory_limit: 300MB}\n"
        "  - {name: cpu, device: cpu, device_memory_limit: 0}\n",
        "t.yaml");
    EXPECT_EQ(c.tiers[0].device_memory_limit, 3ull << 29);
    EXPECT_EQ(c.tiers[1].device_memory_limit, 6ull << 30);
    EXPECT_EQ(c.tiers[2].device_memory_limit, 300'000'000u);
    EXPECT_EQ(c.tiers[3].device_memory_limit, 0u);
    for (const TierConfig& t : parse_config("", "d.yaml").tiers)
        EXPECT_EQ(t.device_memory_limit, 0u);

    expect_error({"tiers:\n  - name: a\n    device: cuda\n    device_memory_limit: lots\n", 4, 5,
                  "tiers[0].device_memory_limit", "expected a byte size such as"});
    expect_error({"tiers:\n  - name: a\n    device_memory_limit: 1GiB\n    device: cpu\n", 3, 5,
                  "tiers[0].device_memory_limit",
                  "caps an accelerator's memory, but this tier's device is cpu"});
    // The device defaults to cpu.
    expect_error({"tiers:\n  - {name: a, device_memory_limit: 1GiB}\n", 2, 15,
                  "tiers[0].device_memory_limit", "this tier's device is cpu"});
    expect_error({"tiers:\n  - {name: a, device: cuda, device_memory_limt: 1GiB}\n", 2, 29,
                  "tiers[0].device_memory_limt", "did you mean 'device_memory_limit'"});
}

TEST(Config, SyntaxErrorHasPosition) {
    ConfigError e = parse_error("model:\n  backbone: cspdarknet\n img_size: 320\n");
    EXPECT_EQ(e.line(), 3);
    EXPECT_EQ(e.column(), 2);
    EXPECT_EQ(e.key_path(), "");
    EXPECT_NE(std::string(e.what()).find("test.yaml:3:2: YAML syntax error"), std::string::npos)
        << e.what();
}

TEST(Config, DuplicateKeyIsAnError) {
    expect_error({"model:\n  img_size: 320\n  img_size: 352\n", 3, 3, "model.img_size",
                  "duplicate key (first given at line 2)"});
}

TEST(Config, DatasetPathIsResolvedAgainstTheConfigFile) {
    Config c = parse_config("data:\n  dataset: ../sets/rupiah/data.yaml\n", "/jobs/a/job.yaml");
    EXPECT_EQ(c.data.dataset, "/jobs/sets/rupiah/data.yaml");
    EXPECT_EQ(c.source_path, "/jobs/a/job.yaml");
    c = parse_config("data:\n  dataset: /abs/set\n", "/jobs/a/job.yaml");
    EXPECT_EQ(c.data.dataset, "/abs/set");
    c = parse_config("data:\n  dataset: synthetic\n", "/jobs/a/job.yaml");
    EXPECT_EQ(c.data.dataset, "synthetic");
}

TEST(Config, MissingFileIsConfigError) {
    try {
        load_config("/nonexistent/job.yaml");
        FAIL() << "no exception";
    } catch (const ConfigError& e) {
        EXPECT_EQ(e.file(), "/nonexistent/job.yaml");
        EXPECT_EQ(e.line(), 0);
        EXPECT_NE(std::string(e.what()).find("cannot read"), std::string::npos) << e.what();
    }
}

TEST(Config, LoadsFromFileAndResolvesRelativeToIt) {
    std::string dir = std::string(SMARTCASH_TEST_TMP) + "/config_load";
    make_directories(dir);
    write_file_atomic(dir + "/job.yaml",
                      "model:\n  pretrained: weights/b4.safetensors\n"
                      "data:\n  dataset: sets/rupiah\n");
    Config c = load_config(dir + "/job.yaml");
    EXPECT_EQ(c.data.dataset, dir + "/sets/rupiah");
    EXPECT_EQ(c.model.pretrained, dir + "/weights/b4.safetensors");
    EXPECT_TRUE(c.model.pretrained_strict);
    write_file_atomic(dir + "/bad.yaml", "model:\n  img_size: big\n");
    try {
        load_config(dir + "/bad.yaml");
        FAIL() << "no exception";
    } catch (const ConfigError& e) {
        EXPECT_EQ(e.file(), dir + "/bad.yaml");
        EXPECT_EQ(e.line(), 2);
        EXPECT_EQ(e.column(), 3);
    }
}

TEST(Config, EnumNamesAndTierLookup) {
    EXPECT_STREQ(to_string(Device::auto_), "auto");
    EXPECT_STREQ(to_string(Device::mps), "mps");
    EXPECT_STREQ(to_string(Backbone::cspdarknet), "cspdarknet");
    EXPECT_STREQ(to_string(Backbone::efficientnet_b4), "efficientnet_b4");
    EXPECT_STREQ(to_string(BadLabelPolicy::skip), "skip");
    EXPECT_STREQ(to_string(Cleanup::extreme), "extreme");
    Config c = parse_config("", "a.yaml");
    ASSERT_NE(c.find_tier("cpu"), nullptr);
    EXPECT_EQ(c.find_tier("cpu")->micro_batch, 2);
    EXPECT_EQ(c.find_tier("gpu"), nullptr);
}

}  // namespace
}  // namespace smartcash
