// The config written back out: round trips, the shipped configs, and the bytes that outlive a
// build: the resolved config a run directory freezes and each checkpoint stores, and the resume
// fingerprint checkpoints carry. A change to those makes existing run directories report a changed
// config, so it needs a documented reason.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/config/schema.hpp"

namespace smartcash {
namespace {

std::string joined(const std::vector<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
}

/// Equality of every key a config file can set, compared through the field table (so a new row
/// is compared without more code here), and of what is derived from them.
void expect_same(const Config& a, const Config& b) {
    EXPECT_TRUE(config::compare_fields(a, b).differ.empty())
        << "fields that differ: " << joined(config::compare_fields(a, b).differ);
    for (std::size_t i = 0; i < std::min(a.tiers.size(), b.tiers.size()); ++i)
        EXPECT_EQ(a.tiers[i].accumulation, b.tiers[i].accumulation) << "tiers[" << i << "]";
}

/// The lines of `text`.
std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t start = 0;
    for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
        out.push_back(text.substr(start, end - start));
    return out;
}

// Every line written so far keeps its form and its place; a new key may add lines.
TEST(ConfigDump, DefaultsKeepTheirWrittenForm) {
    const char* pinned =
        "# Resolved configuration: every key, defaults filled in.\n"
        "model:\n"
        "  backbone: efficientnet_b4\n"
        "  width_multiple: 1\n"
        "  depth_multiple: 1\n"
        "  img_size: 640\n"
        "  drop_connect: 0.2\n"
        "  bn_momentum: 0\n"
        "data:\n"
        "  dataset: \"synthetic\"\n"
        "  synthetic: {images: 240, size: 320, seed: 7}\n"
        "  bad_labels: fail\n"
        "  cache_images: 0\n"
        "  augment: {flip: 0.5, hsv_h: 0.015, hsv_s: 0.5, hsv_v: 0.3, degrees: 3, translate: 0.05, "
        "scale: 0.1}\n"
        "training:\n"
        "  effective_batch: 16\n"
        "  seed: 42\n"
        "  deterministic: true\n"
        "  phase1:\n"
        "    epochs: 2\n"
        "    lr: {backbone: 0, neck: 0.001, head: 0.001}\n"
        "  phase2:\n"
        "    epochs: 2\n"
        "    lr: {backbone: 0.0001, neck: 0.0005, head: 0.0005}\n"
        "  weight_decay: 0.0005\n"
        "  warmup_steps: 20\n"
        "  min_lr_ratio: 0.05\n"
        "  grad_clip: 10\n"
        "  beta1: 0.9\n"
        "  beta2: 0.999\n"
        "  loss:\n"
        "    box: 0.05\n"
        "    obj: 1\n"
        "    cls: 0.5\n"
        "    obj_balance: [4, 1, 0.4]\n"
        "    layer_weights: {layer_1: 1, layer_2: 0.5, layer_3: 0.5}\n"
        "    anchor_threshold: 4\n"
        "  eval:\n"
        "    conf_threshold: 0.001\n"
        "    nms_iou: 0.6\n"
        "    max_detections: 300\n"
        "    every_epochs: 1\n"
        "  early_stopping:\n"
        "    patience: 10\n"
        "    min_delta: 0.001\n"
        "  checkpoint_every_steps: 50\n"
        "  keep_checkpoints: 3\n"
        "  max_nonfinite_steps: 5\n"
        "tiers:\n"
        "  - name: \"accelerated\"\n"
        "    device: auto\n"
        "    micro_batch: 4\n"
        "    threads: 4\n"
        "    memory_limit: 12GiB\n"
        "    device_memory_limit: 0\n"
        "    activation_checkpointing: false\n"
        "    cleanup: aggressive\n"
        "    env: {PYTORCH_MPS_HIGH_WATERMARK_RATIO: \"0.7\", PYTORCH_MPS_LOW_WATERMARK_RATIO: "
        "\"0.5\"}\n"
        "  - name: \"cpu\"\n"
        "    device: cpu\n"
        "    micro_batch: 2\n"
        "    threads: 2\n"
        "    memory_limit: 8GiB\n"
        "    device_memory_limit: 0\n"
        "    activation_checkpointing: false\n"
        "    cleanup: aggressive\n"
        "    env: {}\n"
        "  - name: \"minimal\"\n"
        "    device: cpu\n"
        "    micro_batch: 1\n"
        "    threads: 2\n"
        "    memory_limit: 4GiB\n"
        "    device_memory_limit: 0\n"
        "    activation_checkpointing: true\n"
        "    cleanup: extreme\n"
        "    env: {}\n"
        "supervisor:\n"
        "  poll_interval: 250ms\n"
        "  soft_limit_fraction: 0.85\n"
        "  min_available: 256MiB\n"
        "  pressure_threshold: 40\n"
        "  pressure_duration: 10s\n"
        "  heartbeat_timeout: 5m\n"
        "  stop_grace: 30s\n"
        "  backoff_floor: 1s\n"
        "  backoff_cap: 1m\n"
        "  retry_budget: 5\n"
        "  promotion:\n"
        "    enabled: true\n"
        "    stable_for: 30m\n"
        "    headroom: 0.5\n"
        "    max_wait: 6h\n"
        "  metrics_listen: \"\"\n";
    const std::string dumped = dump_config(parse_config("", "d.yaml"));
    const std::vector<std::string> written = lines_of(dumped);
    auto at = written.begin();
    for (const std::string& line : lines_of(pinned)) {
        auto found = std::find(at, written.end(), line);
        EXPECT_NE(found, written.end()) << "not written (or out of order): " << line << "\n"
                                        << dumped;
        if (found == written.end()) break;
        at = found + 1;
    }
}

TEST(ConfigDump, ResumeFingerprintIsPinned) {
    EXPECT_EQ(resume_fingerprint(parse_config("", "d.yaml")),
              "2fe3418461e6a71ab742fcd1afe47e6db0c63529735dcbd05f0549bde055fdd4");
    // bn_momentum is left out of the fingerprint: it may change under a resume.
    const Config small = parse_config(
        "model: {backbone: cspdarknet, width_multiple: 0.33, depth_multiple: 0.25, img_size: 320, "
        "drop_connect: 0.1, bn_momentum: 0.03}\ntraining: {effective_batch: 8}\n",
        "d.yaml");
    EXPECT_EQ(resume_fingerprint(small),
              "8233f7caf2a4aedf3c53f595efa7c22d77a452ef686498d19198fbda3249029b");
}

TEST(ConfigDump, DumpParsesBackToTheSameConfig) {
    // Every key away from its default (a new key needs a value here), with awkward values:
    // doubles that print long, a size that is no whole unit, durations of fractional
    // milliseconds, strings YAML would retype.
    const char* yaml = R"(
model: {backbone: cspdarknet, width_multiple: 0.1, depth_multiple: 0.3333333333333333, img_size: 96, drop_connect: 0.123456789, bn_momentum: 0.0625, pretrained: "/w/b4 weights: timm.safetensors", pretrained_strict: false}
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
  metrics_listen: "[::1]:9464"
)";
    Config original = parse_config(yaml, "/jobs/a/job.yaml");
    // The YAML sets every field away from its default, so a field the writer forgets cannot
    // come back equal by chance.
    const Config builtin = parse_config("", "d.yaml");
    std::vector<std::string> at_default;
    for (const auto& key : config::compare_fields(original, builtin).equal) {
        if (key.rfind("tiers", 0) != 0) at_default.push_back(key);
    }
    EXPECT_TRUE(at_default.empty()) << "fields left at their default: " << joined(at_default);
    const auto tier_away = config::compare_fields(original.tiers[0], TierConfig{}, "tiers[0].");
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

TEST(ConfigDump, ShippedConfigsLoad) {
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
    EXPECT_DOUBLE_EQ(demo.model.bn_momentum, 0.0);  // the reference batch norm, no override
    EXPECT_EQ(demo.model.pretrained, "");           // the demo starts from random weights
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

TEST(ConfigDump, FingerprintFollowsModelAndEffectiveBatchOnly) {
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

TEST(ConfigDump, IncompatibilitiesNameTheKeys) {
    Config saved = parse_config("", "a.yaml");
    Config current = parse_config("model: {backbone: cspdarknet}\n", "b.yaml");
    EXPECT_EQ(resume_incompatibilities(saved, current), std::vector<std::string>{"model.backbone"});
    current = parse_config("model: {img_size: 320}\ntraining: {effective_batch: 8}\n", "b.yaml");
    EXPECT_EQ(resume_incompatibilities(saved, current),
              (std::vector<std::string>{"model.img_size", "training.effective_batch"}));
}

}  // namespace
}  // namespace smartcash
