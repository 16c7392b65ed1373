// Training-step behaviour: phase-1 freezing, accumulation equivalence, learning, schedules.
#include "worker/train/train_step.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "worker/eval/metrics.hpp"
#include "worker/inference/decode.hpp"
#include "worker/model/detector.hpp"
#include "worker/train/batch.hpp"
#include "worker/train/faults.hpp"
#include "worker/train/loss.hpp"
#include "worker/train/optimizer.hpp"

namespace {

using namespace smartcash;

constexpr int kSize = 64;

model::Detector tiny_detector(std::uint64_t seed, double drop_connect = 0.0,
                              double bn_momentum = 0.0) {
    torch::manual_seed(seed);
    model::DetectorOptions o;
    o.backbone = Backbone::efficientnet_b4;
    o.width_multiple = 0.1;
    o.depth_multiple = 0.2;
    o.drop_connect = drop_connect;
    o.bn_momentum = bn_momentum;
    return model::Detector(o);
}

/// A sample with a bright rectangle (a "note") of class `cls` and its box.
data::Sample make_sample(int cls, float cx, float cy, float w, float h, int shade) {
    data::Sample s;
    s.image = cv::Mat(kSize, kSize, CV_8UC3, cv::Scalar(30, 30, 30));
    cv::rectangle(
        s.image,
        cv::Point(static_cast<int>((cx - w / 2) * kSize), static_cast<int>((cy - h / 2) * kSize)),
        cv::Point(static_cast<int>((cx + w / 2) * kSize), static_cast<int>((cy + h / 2) * kSize)),
        cv::Scalar(shade, 255 - shade, 128), cv::FILLED);
    s.labels.push_back({cls, cx, cy, w, h});
    return s;
}

std::vector<data::Sample> four_samples() {
    return {make_sample(0, 0.5f, 0.5f, 0.5f, 0.3f, 200), make_sample(3, 0.4f, 0.6f, 0.6f, 0.3f, 90),
            make_sample(16, 0.3f, 0.3f, 0.1f, 0.4f, 20),
            make_sample(9, 0.6f, 0.4f, 0.3f, 0.2f, 150)};
}

LossConfig loss_config() { return LossConfig{}; }

TrainingConfig training_config() {
    TrainingConfig t;
    t.weight_decay = 0.01;
    t.grad_clip = 0;  // clipping is not linear in the split, keep the comparison exact
    return t;
}

void copy_weights(model::DetectorImpl& from, model::DetectorImpl& to) {
    torch::NoGradGuard g;
    auto a = from.named_parameters();
    auto b = to.named_parameters();
    for (const auto& item : a) b[item.key()].copy_(item.value());
    auto ba = from.named_buffers();
    auto bb = to.named_buffers();
    for (const auto& item : ba) bb[item.key()].copy_(item.value());
}

TEST(TrainStep, PhaseOneLeavesBackboneBitIdenticalAndMovesHead) {
    auto model = tiny_detector(1);
    auto optimizer = train::make_optimizer(*model, training_config());
    train::apply_learning_rates(*optimizer, training_config(), /*phase=*/1, 5, 100);
    train::set_backbone_trainable(*model, false);
    model->train();
    model->backbone_module().eval();

    std::vector<torch::Tensor> backbone_before, head_before, backbone_buffers_before;
    for (auto& p : model->backbone_parameters()) backbone_before.push_back(p.detach().clone());
    for (auto& p : model->head_parameters()) head_before.push_back(p.detach().clone());
    for (auto& b : model->backbone_module().buffers())
        backbone_buffers_before.push_back(b.detach().clone());

    train::YoloLoss loss(loss_config(), model->anchors());
    for (int i = 0; i < 2; ++i) {
        auto r = train::train_step(*model, *optimizer, loss, four_samples(), 2, kSize, 10.0,
                                   torch::kCPU);
        ASSERT_TRUE(r.completed);
    }
    auto backbone_after = model->backbone_parameters();
    ASSERT_EQ(backbone_after.size(), backbone_before.size());
    for (std::size_t i = 0; i < backbone_after.size(); ++i)
        EXPECT_TRUE(torch::equal(backbone_after[i], backbone_before[i]))
            << "backbone parameter " << i << " changed";
    auto buffers_after = model->backbone_module().buffers();
    for (std::size_t i = 0; i < buffers_after.size(); ++i)
        EXPECT_TRUE(torch::equal(buffers_after[i], backbone_buffers_before[i]))
            << "backbone buffer " << i << " changed";
    int changed = 0;
    auto head_after = model->head_parameters();
    for (std::size_t i = 0; i < head_after.size(); ++i)
        changed += !torch::equal(head_after[i], head_before[i]);
    EXPECT_EQ(changed, static_cast<int>(head_after.size()))
        << "every head tensor should move in phase 1";
}

TEST(TrainStep, AccumulationMatchesOneLargeBatchWithoutBatchStatistics) {
    // BatchNorm in eval mode (running statistics) and no stochastic depth: the model has no
    // batch statistics, so micro-batch 1 x 4 and 4 x 1 must give the same update.
    auto a = tiny_detector(2);
    auto b = tiny_detector(3);
    copy_weights(*a, *b);
    a->eval();
    b->eval();
    auto cfg = training_config();
    auto opt_a = train::make_optimizer(*a, cfg);
    auto opt_b = train::make_optimizer(*b, cfg);
    train::apply_learning_rates(*opt_a, cfg, 2, 30, 100);
    train::apply_learning_rates(*opt_b, cfg, 2, 30, 100);
    train::YoloLoss loss(loss_config(), a->anchors());
    for (int step = 0; step < 2; ++step) {
        auto ra = train::train_step(*a, *opt_a, loss, four_samples(), /*micro_batch=*/1, kSize, 0,
                                    torch::kCPU);
        auto rb = train::train_step(*b, *opt_b, loss, four_samples(), /*micro_batch=*/4, kSize, 0,
                                    torch::kCPU);
        EXPECT_EQ(ra.micro_batches, 4);
        EXPECT_EQ(rb.micro_batches, 1);
        EXPECT_NEAR(ra.loss, rb.loss, 1e-5 * std::max(1.0, std::abs(rb.loss)));
    }
    auto pa = a->named_parameters();
    auto pb = b->named_parameters();
    double worst = 0;
    bool moved = false;
    auto start = tiny_detector(2);
    auto p0 = start->named_parameters();
    for (const auto& item : pa) {
        auto d = (item.value() - pb[item.key()]).abs().max().item<double>();
        worst = std::max(worst, d);
        moved = moved || !torch::equal(item.value(), p0[item.key()]);
    }
    EXPECT_TRUE(moved);
    EXPECT_LT(worst, 1e-5) << "largest parameter difference between the two splits";
}

TEST(TrainStep, ReleasedGradientsGiveTheSameStepsAsZeroFilledOnes) {
    // train_step frees the gradients after the update instead of keeping zero-filled ones between
    // steps. Model b gets zero-filled gradients put back after each step, as before: both must
    // train bit for bit alike (stochastic depth and batch statistics on, three steps).
    auto a = tiny_detector(5, /*drop_connect=*/0.2);
    auto b = tiny_detector(6, /*drop_connect=*/0.2);
    copy_weights(*a, *b);
    a->train();
    b->train();
    auto cfg = training_config();
    cfg.grad_clip = 10.0;
    auto opt_a = train::make_optimizer(*a, cfg);
    auto opt_b = train::make_optimizer(*b, cfg);
    train::YoloLoss loss(loss_config(), a->anchors());
    for (int step = 0; step < 3; ++step) {
        train::apply_learning_rates(*opt_a, cfg, 2, step, 100);
        train::apply_learning_rates(*opt_b, cfg, 2, step, 100);
        torch::manual_seed(100 + step);
        auto ra = train::train_step(*a, *opt_a, loss, four_samples(), 2, kSize, cfg.grad_clip,
                                    torch::kCPU);
        for (const auto& p : a->parameters()) EXPECT_FALSE(p.grad().defined());
        torch::manual_seed(100 + step);
        auto rb = train::train_step(*b, *opt_b, loss, four_samples(), 2, kSize, cfg.grad_clip,
                                    torch::kCPU);
        for (auto& p : b->parameters()) p.mutable_grad() = torch::zeros_like(p);
        EXPECT_EQ(ra.loss, rb.loss);
        EXPECT_EQ(ra.grad_norm, rb.grad_norm);
    }
    auto pa = a->named_parameters();
    auto pb = b->named_parameters();
    for (const auto& item : pa)
        EXPECT_TRUE(torch::equal(item.value(), pb[item.key()])) << item.key();
    auto ba = a->named_buffers();
    auto bb = b->named_buffers();
    for (const auto& item : ba)
        EXPECT_TRUE(torch::equal(item.value(), bb[item.key()])) << item.key();
}

TEST(Collate, OnTheCpuDeviceItIsThePlainCollate) {
    auto samples = four_samples();
    auto plain = train::collate(samples);
    auto on_device = train::collate(samples, torch::kCPU);
    EXPECT_TRUE(torch::equal(plain.images, on_device.images));
    EXPECT_TRUE(torch::equal(plain.targets, on_device.targets));
    EXPECT_EQ(on_device.images.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(on_device.images.is_contiguous());
}

TEST(TrainStep, AbandonedStepLeavesParametersUntouched) {
    auto model = tiny_detector(4);
    auto optimizer = train::make_optimizer(*model, training_config());
    train::apply_learning_rates(*optimizer, training_config(), 2, 10, 100);
    train::YoloLoss loss(loss_config(), model->anchors());
    std::vector<torch::Tensor> before;
    for (auto& p : model->parameters()) before.push_back(p.detach().clone());
    int calls = 0;
    auto r = train::train_step(*model, *optimizer, loss, four_samples(), 1, kSize, 10.0,
                               torch::kCPU, [&] {
                                   ++calls;
                                   return calls < 2;  // stop after the second micro-batch
                               });
    EXPECT_FALSE(r.completed);
    EXPECT_EQ(r.micro_batches, 2);
    auto after = model->parameters();
    for (std::size_t i = 0; i < after.size(); ++i) {
        EXPECT_TRUE(torch::equal(after[i], before[i]));
        EXPECT_FALSE(after[i].grad().defined() && after[i].grad().abs().sum().item<double>() > 0)
            << "half-accumulated gradients must be dropped";
    }
}

/// Sum of AdamW's per-parameter step counts (how many updates it has made, over all parameters).
std::int64_t adam_steps(torch::optim::AdamW& optimizer) {
    std::int64_t total = 0;
    for (auto& entry : optimizer.state())
        total += static_cast<torch::optim::AdamWParamState&>(*entry.second).step();
    return total;
}

TEST(TrainStep, NonFiniteLossSkipsTheUpdateAndDropsTheGradients) {
    auto model = tiny_detector(7);
    auto cfg = training_config();
    cfg.grad_clip = 10.0;
    auto optimizer = train::make_optimizer(*model, cfg);
    train::apply_learning_rates(*optimizer, cfg, 2, 10, 100);
    train::YoloLoss loss(loss_config(), model->anchors());
    // One good step first, so the optimizer has state that a bad step could disturb.
    auto good = train::train_step(*model, *optimizer, loss, four_samples(), 2, kSize, cfg.grad_clip,
                                  torch::kCPU);
    ASSERT_TRUE(good.completed);
    EXPECT_TRUE(std::isfinite(good.loss));
    EXPECT_TRUE(std::isfinite(good.grad_norm));
    EXPECT_FALSE(good.skipped);
    const std::int64_t steps_before = adam_steps(*optimizer);
    std::vector<torch::Tensor> before;
    for (auto& p : model->parameters()) before.push_back(p.detach().clone());

    // Loss gains of NaN: a non-finite loss whose gradients are non-finite too, through the real
    // forward and backward passes.
    LossConfig poisoned = loss_config();
    poisoned.box = poisoned.obj = poisoned.cls = std::numeric_limits<double>::quiet_NaN();
    train::YoloLoss bad_loss(poisoned, model->anchors());
    auto r = train::train_step(*model, *optimizer, bad_loss, four_samples(), 2, kSize,
                               cfg.grad_clip, torch::kCPU);
    EXPECT_TRUE(r.completed);
    EXPECT_TRUE(r.skipped);
    EXPECT_FALSE(std::isfinite(r.loss));
    EXPECT_EQ(adam_steps(*optimizer), steps_before)
        << "the optimizer must not step on a non-finite loss";
    auto after = model->parameters();
    ASSERT_EQ(after.size(), before.size());
    for (std::size_t i = 0; i < after.size(); ++i) {
        EXPECT_TRUE(torch::equal(after[i], before[i])) << "parameter " << i << " changed";
        EXPECT_FALSE(after[i].grad().defined() && !after[i].grad().eq(0).all().item<bool>())
            << "the non-finite gradients must be dropped (parameter " << i << ")";
    }
    // The next good batch trains normally.
    auto next = train::train_step(*model, *optimizer, loss, four_samples(), 2, kSize, cfg.grad_clip,
                                  torch::kCPU);
    EXPECT_FALSE(next.skipped);
    EXPECT_GT(adam_steps(*optimizer), steps_before);
    for (auto& p : model->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
}

TEST(TrainStep, NonFiniteGradientNormIsCaughtWithoutClipping) {
    // grad_clip 0 computes no clipping, but the norm is still checked.
    auto model = tiny_detector(8);
    auto cfg = training_config();  // grad_clip 0
    auto optimizer = train::make_optimizer(*model, cfg);
    train::apply_learning_rates(*optimizer, cfg, 2, 10, 100);
    LossConfig poisoned = loss_config();
    poisoned.obj = std::numeric_limits<double>::infinity();
    train::YoloLoss bad_loss(poisoned, model->anchors());
    std::vector<torch::Tensor> before;
    for (auto& p : model->parameters()) before.push_back(p.detach().clone());
    auto r =
        train::train_step(*model, *optimizer, bad_loss, four_samples(), 4, kSize, 0, torch::kCPU);
    EXPECT_TRUE(r.skipped);
    EXPECT_FALSE(std::isfinite(r.grad_norm));
    EXPECT_EQ(adam_steps(*optimizer), 0);
    auto after = model->parameters();
    for (std::size_t i = 0; i < after.size(); ++i)
        EXPECT_TRUE(torch::equal(after[i], before[i])) << i;
}

TEST(TrainStep, OverfitsOneImageAndDecodesItsBoxes) {
    // Loss targets and decoding must agree on the box encoding: after fitting one image, the
    // best detection of each class overlaps its own box. One box per detection layer, each off
    // centre and wider than tall or taller than wide, so that swapping x and y, or routing a
    // class to the wrong head, leaves some box unfound. Evaluation uses running statistics, so a
    // short run needs a fast BatchNorm momentum.
    auto model = tiny_detector(5, 0.0, /*bn_momentum=*/0.1);
    TrainingConfig cfg = training_config();
    auto optimizer = train::make_optimizer(*model, cfg);
    train::YoloLoss loss(loss_config(), model->anchors());
    model->train();
    struct Object {
        int cls;
        float cx, cy, w, h;
        int shade;
    };
    const std::vector<Object> objects = {
        {2, 0.28f, 0.70f, 0.40f, 0.22f, 220},  // layer_1, lower left, wide
        {9, 0.72f, 0.30f, 0.22f, 0.42f, 120},  // layer_2, upper right, tall
        {15, 0.76f, 0.80f, 0.30f, 0.16f, 40},  // layer_3, lower right, wide
    };
    data::Sample scene;
    scene.image = cv::Mat(kSize, kSize, CV_8UC3, cv::Scalar(30, 30, 30));
    for (const auto& o : objects) {
        cv::rectangle(scene.image,
                      cv::Point(static_cast<int>((o.cx - o.w / 2) * kSize),
                                static_cast<int>((o.cy - o.h / 2) * kSize)),
                      cv::Point(static_cast<int>((o.cx + o.w / 2) * kSize),
                                static_cast<int>((o.cy + o.h / 2) * kSize)),
                      cv::Scalar(o.shade, 255 - o.shade, 128), cv::FILLED);
        scene.labels.push_back({o.cls, o.cx, o.cy, o.w, o.h});
    }
    std::vector<data::Sample> one = {scene};
    std::vector<data::Sample> batch(4, scene);
    double first = 0, last = 0;
    for (auto& group : optimizer->param_groups())
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(3e-3);
    constexpr int steps = 90;
    for (int step = 0; step < steps; ++step) {
        auto r = train::train_step(*model, *optimizer, loss, batch, 4, kSize, 10.0, torch::kCPU);
        if (step == 0) first = r.loss;
        last = r.loss;
    }
    EXPECT_LT(last, first * 0.5) << "loss should fall when fitting one image";
    model->eval();
    torch::NoGradGuard no_grad;
    auto b = train::collate(one);
    auto outputs = model->forward(b.images);
    train::DecodeOptions opts;
    opts.conf_threshold = 0.01f;
    auto dets = train::decode_detections(outputs, model->anchors(), kSize, opts, 0);
    for (const auto& o : objects) {
        const eval::Box truth{(o.cx - o.w / 2) * kSize, (o.cy - o.h / 2) * kSize,
                              (o.cx + o.w / 2) * kSize, (o.cy + o.h / 2) * kSize};
        float best_iou = 0;
        float best_score = -1;
        for (const auto& d : dets) {
            if (d.cls == o.cls && d.score > best_score) {
                best_score = d.score;
                best_iou = eval::iou(d.box, truth);
            }
        }
        EXPECT_GT(best_score, 0.0f) << "no detection of class " << o.cls;
        EXPECT_GT(best_iou, 0.5f) << "top class-" << o.cls
                                  << " detection does not overlap its trained box";
    }
}

TEST(Schedule, WarmupThenCosineToTheFloor) {
    TrainingConfig cfg;
    cfg.warmup_steps = 10;
    cfg.min_lr_ratio = 0.1;
    EXPECT_LT(train::schedule_factor(cfg, 0, 100), train::schedule_factor(cfg, 5, 100));
    EXPECT_LT(train::schedule_factor(cfg, 5, 100), train::schedule_factor(cfg, 9, 100));
    EXPECT_NEAR(train::schedule_factor(cfg, 10, 100), 1.0, 1e-9);
    EXPECT_GT(train::schedule_factor(cfg, 40, 100), train::schedule_factor(cfg, 80, 100));
    EXPECT_NEAR(train::schedule_factor(cfg, 100, 100), 0.1, 1e-9);
}

TEST(Schedule, PhaseRatesReachTheirGroups) {
    auto model = tiny_detector(6);
    TrainingConfig cfg;
    cfg.warmup_steps = 0;
    cfg.phase1.lr = {0.5, 0.02, 0.03};
    cfg.phase2.lr = {0.001, 0.002, 0.003};
    auto opt = train::make_optimizer(*model, cfg);
    ASSERT_EQ(opt->param_groups().size(), static_cast<std::size_t>(train::group_count));
    auto lr = [&](int g) {
        return static_cast<torch::optim::AdamWOptions&>(opt->param_groups()[g].options()).lr();
    };
    train::apply_learning_rates(*opt, cfg, 1, 0, 100);
    EXPECT_EQ(lr(0), 0.0) << "the backbone never learns in phase 1";
    EXPECT_NEAR(lr(2), 0.02, 1e-12);
    EXPECT_NEAR(lr(5), 0.03, 1e-12);
    train::apply_learning_rates(*opt, cfg, 2, 0, 100);
    EXPECT_NEAR(lr(1), 0.001, 1e-12);
    EXPECT_NEAR(lr(3), 0.002, 1e-12);
    EXPECT_NEAR(lr(4), 0.003, 1e-12);
    // Weight decay only on kernels.
    EXPECT_GT(
        static_cast<torch::optim::AdamWOptions&>(opt->param_groups()[0].options()).weight_decay(),
        0.0);
    EXPECT_EQ(
        static_cast<torch::optim::AdamWOptions&>(opt->param_groups()[1].options()).weight_decay(),
        0.0);
}

TEST(DataOrder, DeterministicPermutationPerEpoch) {
    auto a = train::epoch_order(50, 7, 0);
    auto b = train::epoch_order(50, 7, 0);
    auto c = train::epoch_order(50, 7, 1);
    auto d = train::epoch_order(50, 8, 0);
    EXPECT_EQ(a, b);
    EXPECT_NE(a, c);
    EXPECT_NE(a, d);
    auto sorted = a;
    std::sort(sorted.begin(), sorted.end());
    for (std::int64_t i = 0; i < 50; ++i) EXPECT_EQ(sorted[static_cast<std::size_t>(i)], i);
}

TEST(OutOfMemory, RecognisesTheAllocatorsMessages) {
    EXPECT_TRUE(train::is_out_of_memory(
        "MPS backend out of memory (MPS allocated: 16.83 GB, other allocations: 1 GB)"));
    EXPECT_TRUE(train::is_out_of_memory("CUDA out of memory. Tried to allocate 20.00 MiB"));
    EXPECT_TRUE(
        train::is_out_of_memory("[enforce fail at alloc_cpu.cpp:75] . DefaultCPUAllocator: can't "
                                "allocate memory: you tried to allocate 123 bytes"));
    EXPECT_FALSE(train::is_out_of_memory("shape '[2, 3]' is invalid for input of size 7"));
}

// Real texts, each from a report of it on GitHub: all are out of memory on the device, so the
// job moves down a tier instead of retrying where the memory is not.
TEST(OutOfMemory, RecognisesTheLibrariesAllocationFailures) {
    // cuBLAS cannot allocate its workspace (QwenLM/Qwen3 issue 873, and many others).
    EXPECT_TRUE(train::is_out_of_memory(
        "CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"));
    // cuDNN (KupynOrest/DeblurGAN issue 128); lower case as pytorch/pytorch issue 20123 wrote it.
    EXPECT_TRUE(train::is_out_of_memory("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"));
    EXPECT_TRUE(train::is_out_of_memory("RuntimeError cudnn error cudnn_status_alloc_failed"));
    // Their other failures are not memory.
    EXPECT_FALSE(train::is_out_of_memory("cuDNN error: CUDNN_STATUS_EXECUTION_FAILED"));
    EXPECT_FALSE(
        train::is_out_of_memory("CUDA error: CUBLAS_STATUS_NOT_INITIALIZED when calling "
                                "`cublasCreate(handle)`"));
}

TEST(OutOfMemory, RecognisesMetalCommandBufferOutOfMemory) {
    // MTLCommandBufferErrorOutOfMemory (code 8 of MTLCommandBufferErrorDomain, MTLCommandBuffer.h)
    // as Metal words it on Apple silicon: ggml-org/llama.cpp issue 9701, and with
    // MTL_DEBUG_LAYER=1 on an M5 Pro (gfx-rs/wgpu issue 9545).
    EXPECT_TRUE(train::is_out_of_memory(
        "error: Insufficient Memory (00000008:kIOGPUCommandBufferCallbackErrorOutOfMemory)"));
    EXPECT_TRUE(train::is_out_of_memory(
        "Execution of the command buffer was aborted due to an error during execution. "
        "Insufficient Memory (00000008:kIOGPUCommandBufferCallbackErrorOutOfMemory)"));
    // Older macOS (safx/waifu2x-metal issue 3).
    EXPECT_TRUE(train::is_out_of_memory(
        "MetalExecutionError: Error Domain=MTLCommandBufferErrorDomain Code=8 \"Insufficient "
        "Memory (IOAF code 8)\" UserInfo={NSLocalizedDescription=Insufficient Memory (IOAF code "
        "8)}"));
    EXPECT_TRUE(train::is_out_of_memory("MTLCommandBufferErrorOutOfMemory"));
    // A page fault or an internal error of a command buffer is no memory shortage
    // (nzcv/note issue 24; pytorch/pytorch issue 123171 on an M2 Max).
    EXPECT_FALSE(train::is_out_of_memory(
        "Error Domain=MTLCommandBufferErrorDomain Code=3 \"Caused GPU Address Fault Error "
        "(0000000b:kIOGPUCommandBufferCallbackErrorPageFault)\""));
    EXPECT_FALSE(train::is_out_of_memory(
        "Error: command buffer exited with error status.\n\tThe Metal Performance Shaders "
        "operations encoded on it may not have completed.\n\tError: \n\t(null)\n\tInternal "
        "Error (0000000e:Internal Error)"));
}

TEST(OutOfMemory, ClassifiesTheAllocatorsExceptions) {
    const c10::SourceLocation here{__func__, __FILE__, static_cast<std::uint32_t>(__LINE__)};
    const std::string cuda =
        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB "
        "of which 1.06 GiB is free. Of the allocated memory 512.00 MiB is allocated by PyTorch";
    const std::string mps =
        "MPS backend out of memory (MPS allocated: 1.02 GB, other allocations: 2.50 MB, max "
        "allowed: 1.02 GB). Tried to allocate 256.00 KB on private pool.";
    // By type: what the CUDA allocator throws.
    EXPECT_TRUE(train::is_out_of_memory(c10::OutOfMemoryError(here, cuda)));
    EXPECT_TRUE(train::is_out_of_memory(c10::OutOfMemoryError(here, "no usual text at all")));
    EXPECT_TRUE(train::is_out_of_memory(std::bad_alloc()));
    // By text: allocators that throw a plain c10::Error (MPS), or anything else.
    EXPECT_TRUE(train::is_out_of_memory(c10::Error(here, mps)));
    EXPECT_TRUE(train::is_out_of_memory(c10::Error(here, cuda)));
    EXPECT_TRUE(train::is_out_of_memory(std::runtime_error(mps)));
    EXPECT_FALSE(
        train::is_out_of_memory(c10::Error(here, "shape '[2, 3]' is invalid for input of size 7")));
    EXPECT_FALSE(train::is_out_of_memory(std::runtime_error("checkpoint directory is read-only")));
}

TEST(OutOfMemory, ARealAllocationFailureOfLibTorchIsClassified) {
    // 4 PiB: more than any address space, so the CPU allocator fails at once.
    try {
        auto t = torch::empty({std::int64_t{1} << 50}, torch::kFloat);
        ADD_FAILURE() << "allocated " << t.numel() << " floats";
    } catch (const std::exception& e) {
        EXPECT_TRUE(train::is_out_of_memory(e)) << e.what();
    }
}

}  // namespace
