// One optimizer step of the loop: the step's images in their seeded order, the buffer snapshot
// that lets a stop or a skipped step restore the model exactly, train_step(), and what the step
// leaves behind (progress, a metrics line, the non-finite streak).
#include <fmt/core.h>

#include "worker/channel/stop_request.hpp"
#include "worker/device/process_memory.hpp"
#include "worker/distributed/shard.hpp"
#include "worker/train/batch.hpp"
#include "worker/train/optimizer.hpp"
#include "worker/train/trainer.hpp"

namespace smartcash::train {

std::vector<data::Sample> Trainer::load_step_samples(std::int64_t step_in_epoch) const {
    const auto& tc = m_config.training;
    std::vector<data::Sample> samples;
    // This rank's slice of the step; each image keeps the seed of its global position.
    const auto shard = dist::step_shard(step_in_epoch * tc.effective_batch, tc.effective_batch,
                                        m_dist.rank, m_dist.world_size);
    for (std::int64_t pos = shard.begin; pos < shard.end; ++pos) {
        const auto index =
            static_cast<std::size_t>(m_progress.order.at(static_cast<std::size_t>(pos)));
        const std::uint64_t seed =
            mix_seed(tc.seed, static_cast<std::uint64_t>(m_progress.epoch) + 1,
                     static_cast<std::uint64_t>(pos));
        samples.push_back(data::load_sample(m_data.train, index, m_config.model.img_size,
                                            &m_config.data.augment, seed));
    }
    return samples;
}

std::vector<data::Sample> Trainer::take_step_samples() {
    if (m_prefetcher)
        if (auto ahead = m_prefetcher->take({m_progress.epoch, m_progress.step_in_epoch}))
            return std::move(*ahead);
    return load_step_samples(m_progress.step_in_epoch);
}

void Trainer::prefetch_next_step() {
    const std::int64_t next = m_progress.step_in_epoch + 1;
    if (!m_prefetcher || next >= m_steps_per_epoch) return;
    // The order and the dataset stay as they are until the epoch ends, after this step is taken.
    m_prefetcher->start({m_progress.epoch, next}, [this, next] { return load_step_samples(next); });
}

void Trainer::run_one_step() {
    const auto& tc = m_config.training;
    const int phase = phase_of(m_progress.epoch);
    // Per-step seeding makes stochastic depth independent of where the run was resumed; each
    // micro-batch is reseeded from the step index of its first image (below), so ranks draw the
    // masks one process would.
    const std::uint64_t step_seed =
        mix_seed(tc.seed, 0x57E9ull, static_cast<std::uint64_t>(m_progress.step));
    seed_generators(step_seed, m_device);
    // Until the snapshot below is complete, the model is that of the last completed step and a
    // checkpoint takes its live buffers.
    m_step_start_buffers.clear();
    m_updates_at_step_start = optimizer_updates(*m_optimizer);
    m_lr = apply_learning_rates(*m_optimizer, tc, phase, step_in_phase(), phase_steps(phase));

    const auto started = Clock::now();
    const auto samples = take_step_samples();
    prefetch_next_step();
    StepResult r;
    try {
        // The snapshot allocates a copy of every buffer: it belongs to the step's out-of-memory
        // handling like the forward and backward passes.
        m_step_start_buffers = snapshot_buffers();
        const bool poisoned = m_poisoned_loss && m_hooks.poisons_loss(m_progress.step);
        StepShare share;
        share.global_batch = tc.effective_batch;
        share.first_index =
            dist::step_shard(0, tc.effective_batch, m_dist.rank, m_dist.world_size).begin;
        share.before_micro = [this, step_seed](std::int64_t first) {
            seed_generators(mix_seed(step_seed, 0x3A1Cull, static_cast<std::uint64_t>(first)),
                            m_device);
        };
        share.group = m_group.get();
        r = train_step(
            *m_model, *m_optimizer, poisoned ? *m_poisoned_loss : *m_loss, samples,
            m_tier.micro_batch, m_config.model.img_size, tc.grad_clip, m_device,
            [this] { return between_micro(); }, share);
    } catch (const std::bad_alloc& e) {
        handle_oom(e.what(), false);
    } catch (const c10::Error& e) {
        if (is_out_of_memory(e)) handle_oom(e.what(), false);
        throw;
    }
    if (!r.completed) stop_now();
    if (r.skipped) {
        // No update: the forward passes' changes to the BatchNorm statistics go too, so the
        // model is exactly that of the last good step.
        restore_step_start_buffers();
        ++m_progress.skipped_steps;
        ++m_progress.nonfinite_streak;
    } else {
        m_progress.nonfinite_streak = 0;
        m_last_step = r;
    }
    m_step_start_buffers.clear();
    // A skipped step still counts as a step of the run: it used its batch, and the step number
    // (learning-rate schedule, data position, checkpoint numbering) moves on as for any other.
    ++m_progress.step;
    ++m_progress.step_in_epoch;
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    const double ips = tc.effective_batch / std::max(seconds, 1e-9);
    const auto device = note_device_memory();
    m_images_per_s = m_images_per_s == 0 ? ips : 0.8 * m_images_per_s + 0.2 * ips;

    protocol::StepMetrics line;
    line.step = m_progress.step;
    line.epoch = m_progress.epoch;
    line.phase = phase;
    line.loss = r.loss;
    line.box = r.box;
    line.obj = r.obj;
    line.cls = r.cls;
    line.grad_norm = r.grad_norm;
    line.skipped = r.skipped;
    line.skipped_steps = m_progress.skipped_steps;
    line.lr = m_lr;
    line.images_per_s = ips;
    line.rss = read_process_memory().rss;
    line.device_mem = device.allocated;
    line.device_reserved = device.reserved;
    line.peak_device_mem = m_peak_device;
    line.peak_device_reserved = m_peak_device_reserved;
    line.tier = m_tier.name;
    append_metrics(line);
    if (r.skipped) {
        m_bar.finish();
        log(fmt::format(
            "step {}: non-finite loss or gradient norm (loss {}, gradient norm {}): update "
            "skipped ({} in a row, limit {})",
            m_progress.step, r.loss, r.grad_norm, m_progress.nonfinite_streak,
            tc.max_nonfinite_steps));
    }
    send_progress(/*force=*/r.skipped);
    if (m_progress.nonfinite_streak >= tc.max_nonfinite_steps) {
        const std::int64_t last_good = m_progress.step - m_progress.nonfinite_streak;
        throw DivergedError(fmt::format(
            "training diverged: {} optimizer steps in a row (steps {} to {}) had a non-finite "
            "loss or gradient norm (training.max_nonfinite_steps is {}); their updates were "
            "skipped, so the weights are those of step {}. Lower the learning rates or check the "
            "data, then resume",
            m_progress.nonfinite_streak, last_good + 1, m_progress.step, tc.max_nonfinite_steps,
            last_good));
    }
}

std::vector<torch::Tensor> Trainer::snapshot_buffers() {
    const auto buffers = m_model->buffers();
    std::vector<torch::Tensor> copy;
    copy.reserve(buffers.size());
    for (std::size_t k = 0; k < buffers.size(); ++k) {
        if (k == buffers.size() / 2 && m_progress.step == m_hooks.snapshot_oom_at_step)
            (void)torch::empty({std::int64_t{1} << 48}, torch::kFloat32);  // 1 PiB: cannot succeed
        copy.push_back(buffers[k].detach().clone());
    }
    return copy;
}

void Trainer::restore_step_start_buffers() {
    torch::NoGradGuard no_grad;
    const auto buffers = m_model->buffers();
    for (std::size_t k = 0; k < buffers.size() && k < m_step_start_buffers.size(); ++k)
        buffers[k].copy_(m_step_start_buffers[k]);
}

}  // namespace smartcash::train
