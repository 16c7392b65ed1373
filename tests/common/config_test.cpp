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

/// The fields of two configs compared one by one: the names of those that differ and of those
/// that are equal. A field added to the structs belongs here (and, set away from its default, in
/// DumpParsesBackToTheSameConfig's YAML).
struct FieldComparison {
    std::vector<std::string> differ;
    std::vector<std::string> equal;
    void add(bool same, const std::string& name) { (same ? equal : differ).push_back(name); }
};

#define SMARTCASH_FIELD(out, prefix, a, b, field) (out).add((a).field == (b).field, prefix #field)

void compare_tier(const TierConfig& p, const TierConfig& q, const std::string& prefix,
                  FieldComparison& out) {
    SMARTCASH_FIELD(out, prefix +, p, q, name);
    SMARTCASH_FIELD(out, prefix +, p, q, device);
    SMARTCASH_FIELD(out, prefix +, p, q, micro_batch);
    SMARTCASH_FIELD(out, prefix +, p, q, threads);
    SMARTCASH_FIELD(out, prefix +, p, q, memory_limit);
    SMARTCASH_FIELD(out, prefix +, p, q, device_memory_limit);
    SMARTCASH_FIELD(out, prefix +, p, q, activation_checkpointing);
    SMARTCASH_FIELD(out, prefix +, p, q, cleanup);
    SMARTCASH_FIELD(out, prefix +, p, q, env);
    SMARTCASH_FIELD(out, prefix +, p, q, accumulation);
}

/// Every field a config file can set (source_path aside); tiers when `with_tiers`.
FieldComparison compare_configs(const Config& a, const Config& b, bool with_tiers = true) {
    FieldComparison out;
#define F(field) SMARTCASH_FIELD(out, , a, b, field)
    F(model.backbone);
    F(model.width_multiple);
    F(model.depth_multiple);
    F(model.img_size);
    F(model.drop_connect);
    F(model.bn_momentum);
    F(data.dataset);
    F(data.synthetic.images);
    F(data.synthetic.size);
    F(data.synthetic.seed);
    F(data.bad_labels);
    F(data.cache_images);
    F(data.augment.flip);
    F(data.augment.hsv_h);
    F(data.augment.hsv_s);
    F(data.augment.hsv_v);
    F(data.augment.degrees);
    F(data.augment.translate);
    F(data.augment.scale);
    F(training.effective_batch);
    F(training.phase1.epochs);
    F(training.phase1.lr.backbone);
    F(training.phase1.lr.neck);
    F(training.phase1.lr.head);
    F(training.phase2.epochs);
    F(training.phase2.lr.backbone);
    F(training.phase2.lr.neck);
    F(training.phase2.lr.head);
    F(training.weight_decay);
    F(training.warmup_steps);
    F(training.min_lr_ratio);
    F(training.grad_clip);
    F(training.beta1);
    F(training.beta2);
    F(training.loss.box);
    F(training.loss.obj);
    F(training.loss.cls);
    F(training.loss.obj_balance);
    F(training.loss.layer_weights);
    F(training.loss.anchor_threshold);
    F(training.eval.conf_threshold);
    F(training.eval.nms_iou);
    F(training.eval.max_detections);
    F(training.eval.every_epochs);
    F(training.early_stopping.patience);
    F(training.early_stopping.min_delta);
    F(training.checkpoint_every_steps);
    F(training.keep_checkpoints);
    F(training.max_nonfinite_steps);
    F(training.seed);
    F(training.deterministic);
    F(supervisor.poll_interval_seconds);
    F(supervisor.soft_limit_fraction);
    F(supervisor.min_available);
    F(supervisor.pressure_threshold);
    F(supervisor.pressure_seconds);
    F(supervisor.heartbeat_timeout_seconds);
    F(supervisor.stop_grace_seconds);
    F(supervisor.backoff_floor_seconds);
    F(supervisor.backoff_cap_seconds);
    F(supervisor.retry_budget);
    F(supervisor.promotion.enabled);
    F(supervisor.promotion.stable_seconds);
    F(supervisor.promotion.headroom);
    F(supervisor.promotion.max_wait_seconds);
#undef F
    if (with_tiers) {
        out.add(a.tiers.size() == b.tiers.size(), "tiers.size()");
        for (std::size_t i = 0; i < std::min(a.tiers.size(), b.tiers.size()); ++i)
            compare_tier(a.tiers[i], b.tiers[i], "tiers[" + std::to_string(i) + "].", out);
    }
    return out;
}

std::string joined(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

/// Field-by-field equality of everything a config file can set (source_path aside).
void expect_same(const Config& a, const Config& b) {
    const auto fields = compare_configs(a, b);
    EXPECT_TRUE(fields.differ.empty()) << "fields that differ: " << joined(fields.differ);
}

TEST(Config, DumpParsesBackToTheSameConfig) {
    // Every key away from its default, with awkward values: doubles that print long, a size
    // that is no whole unit, durations of fractional milliseconds, strings YAML would retype.
    const char* yaml = R"(
model: {backbone: cspdarknet, width_multiple: 0.1, depth_multiple: 0.3333333333333333, img_size: 96, drop_connect: 0.123456789, bn_momentum: 0.0625}
data:
  dataset: "../my data/set: one"
  synthetic: {images: 11, size: 65, seed: 18446744073709551615}
  bad_labels: skip
  cache_images: 7
  augment: {flip: 0.25, hsv_h: 0.1, hsv_s: 0.2, hsv_v: 0.35, degrees: 4.5, translate: 0.01, scale: 0.02}
training:
  effective_batch: 24
  seed: 1
  deterministic: false
  phase1: {epochs: 0, lr: {backbone: 1e-7, neck: 3e-3, head: 0.0031}}
  phase2: {epochs: 5, lr: {backbone: 2e-5, neck: 4e-4, head: 6e-4}}
  weight_decay: 0.01
  warmup_steps: 7.5
  min_lr_ratio: 0.2
  grad_clip: 0
  beta1: 0.8
  beta2: 0.95
  loss: {box: 0.07, obj: 0.9, cls: 0.4, obj_balance: [3.5, 1.5, 0.25], layer_weights: {layer_1: 2, layer_2: 0.1, layer_3: 0}, anchor_threshold: 2.9}
  eval: {conf_threshold: 0.25, nms_iou: 0.45, max_detections: 50, every_epochs: 2}
  early_stopping: {patience: 0, min_delta: 0.0005}
  checkpoint_every_steps: 0
  keep_checkpoints: 9
  max_nonfinite_steps: 2
tiers:
  - {name: "yes", device: mps, micro_batch: 8, threads: 3, memory_limit: 1234567, device_memory_limit: 5GiB, activation_checkpointing: true, cleanup: extreme, env: {A: "true", B: "null", C: "  spaced  ", PYTORCH_MPS_HIGH_WATERMARK_RATIO: "1.2", PYTORCH_MPS_LOW_WATERMARK_RATIO: "1.2"}}
  - {name: "0.5", device: cuda, micro_batch: 24, memory_limit: 1.5GiB, device_memory_limit: 1000000007}
  - {name: null-ish, device: auto, device_memory_limit: 768MiB}
supervisor:
  poll_interval: 0.1234s
  soft_limit_fraction: 0.7
  min_available: 3GB
  pressure_threshold: 12.5
  pressure_duration: 0
  heartbeat_timeout: 90s
  stop_grace: 0.5
  backoff_floor: 250ms
  backoff_cap: 1d
  retry_budget: 2
  promotion: {enabled: false, stable_for: 45m, headroom: 1, max_wait: 2h}
)";
    Config original = parse_config(yaml, "/jobs/a/job.yaml");
    // The YAML sets every field away from its default, so a field the writer forgets cannot
    // come back equal by chance.
    const Config builtin = parse_config("", "d.yaml");
    const auto away = compare_configs(original, builtin, /*with_tiers=*/false);
    EXPECT_TRUE(away.equal.empty()) << "fields left at their default: " << joined(away.equal);
    FieldComparison tier_away;
    compare_tier(original.tiers[0], TierConfig{}, "tiers[0].", tier_away);
    EXPECT_TRUE(tier_away.equal.empty())
        << "fields left at their default: " << joined(tier_away.equal);
    EXPECT_EQ(original.data.dataset, "/jobs/my data/set: one");
    EXPECT_EQ(original.tiers[0].name, "yes");
    EXPECT_EQ(original.tiers[0].env.at("B"), "null");
    EXPECT_EQ(original.tiers[1].name, "0.5");
    EXPECT_EQ(original.tiers[1].device_memory_limit, 1000000007u);
    EXPECT_EQ(original.tiers[2].device_memory_limit, 768ull << 20);

    std::string dumped = dump_config(original);
    Config again = parse_config(dumped, "/elsewhere/config.yaml");
    SCOPED_TRACE(dumped);
    expect_same(original, again);
    EXPECT_EQ(dump_config(again), dumped);

    Config defaults = parse_config("", "d.yaml");
    expect_same(defaults, parse_config(dump_config(defaults), "d.yaml"));
}

TEST(Config, ShippedConfigsLoad) {
    const std::string dir = SMARTCASH_CONFIG_DIR;
    Config full = load_config(dir + "/default.yaml");
    EXPECT_EQ(full.model.backbone, Backbone::efficientnet_b4);
    EXPECT_EQ(full.model.img_size, 640);
    EXPECT_EQ(full.data.dataset, "synthetic");
    EXPECT_EQ(full.training.phase1.epochs, 10);
    EXPECT_EQ(full.training.phase2.epochs, 20);
    EXPECT_EQ(full.source_path, dir + "/default.yaml");
    // The written-out tiers are exactly the built-in ones.
    Config builtin = parse_config("", "builtin.yaml");
    ASSERT_EQ(full.tiers.size(), builtin.tiers.size());
    for (std::size_t i = 0; i < full.tiers.size(); ++i) {
        EXPECT_EQ(full.tiers[i].name, builtin.tiers[i].name);
        EXPECT_EQ(full.tiers[i].device, builtin.tiers[i].device);
        EXPECT_EQ(full.tiers[i].micro_batch, builtin.tiers[i].micro_batch);
        EXPECT_EQ(full.tiers[i].threads, builtin.tiers[i].threads);
        EXPECT_EQ(full.tiers[i].memory_limit, builtin.tiers[i].memory_limit);
        EXPECT_EQ(full.tiers[i].device_memory_limit, builtin.tiers[i].device_memory_limit);
        EXPECT_EQ(full.tiers[i].activation_checkpointing,
                  builtin.tiers[i].activation_checkpointing);
        EXPECT_EQ(full.tiers[i].cleanup, builtin.tiers[i].cleanup);
        EXPECT_EQ(full.tiers[i].env, builtin.tiers[i].env);
    }

    Config demo = load_config(dir + "/demo.yaml");
    EXPECT_DOUBLE_EQ(demo.model.width_multiple, 0.25);
    EXPECT_DOUBLE_EQ(demo.model.depth_multiple, 0.34);
    EXPECT_EQ(demo.model.img_size, 128);
    EXPECT_DOUBLE_EQ(demo.model.bn_momentum, 0.1);
    EXPECT_EQ(demo.data.synthetic.images, 240);
    EXPECT_EQ(demo.data.synthetic.size, 320);
    EXPECT_EQ(demo.training.effective_batch, 8);
    ASSERT_EQ(demo.tiers.size(), 3u);
    EXPECT_EQ(demo.tiers[0].name, "accelerated");
    EXPECT_EQ(demo.tiers[0].memory_limit, 200ull << 20);
    EXPECT_LT(demo.tiers[0].memory_limit, demo.tiers[1].memory_limit);
    EXPECT_EQ(demo.tiers[0].accumulation, 1);
    EXPECT_EQ(demo.tiers[1].accumulation, 2);
    EXPECT_EQ(demo.tiers[2].accumulation, 8);
    EXPECT_TRUE(demo.tiers[2].activation_checkpointing);
    // Both survive a dump round trip, as the run directory's frozen copy must.
    expect_same(demo, parse_config(dump_config(demo), "frozen.yaml"));
    expect_same(full, parse_config(dump_config(full), "frozen.yaml"));
}

TEST(Config, LoadsFromFileAndResolvesRelativeToIt) {
    std::string dir = std::string(SMARTCASH_TEST_TMP) + "/config_load";
    make_directories(dir);
    write_file_atomic(dir + "/job.yaml", "data:\n  dataset: sets/rupiah\n");
    Config c = load_config(dir + "/job.yaml");
    EXPECT_EQ(c.data.dataset, dir + "/sets/rupiah");
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

TEST(Config, FingerprintFollowsModelAndEffectiveBatchOnly) {
    Config base = parse_config("", "a.yaml");
    const std::string fingerprint = resume_fingerprint(base);
    EXPECT_EQ(fingerprint.size(), 64u);
    EXPECT_EQ(resume_fingerprint(parse_config("", "b.yaml")), fingerprint);

    // Tiers, supervisor, data and learning rates may change under a resume.
    Config tiers = parse_config(
        "tiers:\n  - {name: only, micro_batch: 2, device: cuda, device_memory_limit: 2GiB}\n"
        "supervisor: {retry_budget: 9}\n"
        "training: {phase2: {epochs: 50, lr: {head: 0.1}}}\ndata: {cache_images: 3}\n",
        "c.yaml");
    EXPECT_EQ(resume_fingerprint(tiers), fingerprint);
    EXPECT_TRUE(resume_incompatibilities(base, tiers).empty());

    for (const char* changed : {"model: {backbone: cspdarknet}", "model: {width_multiple: 0.5}",
                                "model: {depth_multiple: 0.5}", "model: {img_size: 320}",
                                "model: {drop_connect: 0.1}", "training: {effective_batch: 32}"}) {
        EXPECT_NE(resume_fingerprint(parse_config(changed, "d.yaml")), fingerprint) << changed;
    }
}

TEST(Config, IncompatibilitiesNameTheKeys) {
    Config saved = parse_config("", "a.yaml");
    Config current = parse_config("model: {backbone: cspdarknet}\n", "b.yaml");
    EXPECT_EQ(resume_incompatibilities(saved, current), std::vector<std::string>{"model.backbone"});
    current = parse_config("model: {img_size: 320}\ntraining: {effective_batch: 8}\n", "b.yaml");
    EXPECT_EQ(resume_incompatibilities(saved, current),
              (std::vector<std::string>{"model.img_size", "training.effective_batch"}));
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
