// The bytes that outlive a build: the resolved config a run directory freezes and each
// checkpoint stores, and the resume fingerprint checkpoints carry. A change here makes existing
// run directories report a changed config, so it needs a documented reason.
#include <gtest/gtest.h>

#include <string>

#include "common/config.hpp"

namespace smartcash {
namespace {

TEST(ConfigDump, DefaultsAreWrittenExactlySo) {
    const char* expected =
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
        "  augment: {flip: 0.5, hsv_h: 0.015, hsv_s: 0.5, hsv_v: 0.3, degrees: 3, translate: 0.05, scale: 0.1}\n"
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
        "    env: {PYTORCH_MPS_HIGH_WATERMARK_RATIO: \"0.7\", PYTORCH_MPS_LOW_WATERMARK_RATIO: \"0.5\"}\n"
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
        "    threads: 1\n"
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
        "    max_wait: 6h\n";
    EXPECT_EQ(dump_config(parse_config("", "d.yaml")), expected);
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

}  // namespace
}  // namespace smartcash
