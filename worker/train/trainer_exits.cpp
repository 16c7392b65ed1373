// Checkpoints, and the ends of a launch that the fault contract defines (docs/exit-codes.md): a
// requested stop (finish the micro-batch, checkpoint the last completed step, exit), an
// allocation failure (drop the half-accumulated gradients, write an emergency checkpoint of the
// last completed step unless the failure came inside the optimizer update, exit with oom), and,
// with ranks, a collective that lost another rank (the same checkpoint, exit with peer_lost).
#include <fmt/core.h>

#include "common/exit_codes.hpp"
#include "worker/channel/stop_request.hpp"
#include "worker/train/trainer.hpp"

namespace smartcash::train {

void Trainer::checkpoint(const std::string& kind, bool mid_step) {
    CheckpointMeta meta;
    meta.kind = kind;
    meta.phase = phase_of(m_progress.epoch);
    meta.progress = m_progress;
    meta.tier = m_tier.name;
    meta.device = device_name(m_device);
    meta.micro_batch = m_tier.micro_batch;
    meta.effective_batch = m_config.training.effective_batch;
    meta.world_size = m_dist.world_size;
    meta.fingerprint = resume_fingerprint(m_config, m_dataset_identity);
    meta.dataset = m_dataset_identity;
    meta.config_yaml = dump_config(m_config);
    meta.pretrained = m_pretrained;
    const std::string bytes = serialize_checkpoint(*m_model, *m_optimizer, meta,
                                                   mid_step ? &m_step_start_buffers : nullptr);
    auto saved = m_store->save(bytes, meta);
    m_last_saved_step = m_progress.step;
    m_last_saved_path = saved.path;
    if (kind == "epoch" && m_progress.best_epoch == m_progress.epoch - 1)
        m_store->save_best(bytes, meta);
    report(
        protocol::CheckpointWritten{saved.path, saved.step, m_progress.epoch, saved.sha256, kind});
}

void Trainer::stop_now() {
    m_bar.finish();
    const std::string reason = stop_reason();
    // Parameters and optimizer state are those of the last completed step; the buffers come from
    // the snapshot taken when the abandoned step began.
    checkpoint("stop", /*mid_step=*/!m_step_start_buffers.empty());
    const std::string path = m_last_saved_path;
    const int code = stop_exit_code();
    if (!m_step_start_buffers.empty())
        log(
            fmt::format("stopping ({}) inside step {}: its partial gradients are dropped; "
                        "checkpoint at step {} written",
                        reason, m_progress.step + 1, m_progress.step));
    else
        log(fmt::format("stopping ({}): checkpoint at step {} written", reason, m_progress.step));
    report(protocol::Stopping{reason, m_progress.step, path, code});
    throw RunEnd{code};
}

void Trainer::handle_oom(const std::string& message, bool in_optimizer_step) {
    m_bar.finish();
    const std::string first_line = message.substr(0, message.find('\n'));
    log("out of memory: " + first_line);
    m_optimizer->zero_grad();
    m_reserve.release();
    note_device_memory();  // the allocator's peak includes the attempt that failed
    release_memory(m_device, Cleanup::extreme);
    std::string path;
    // An allocation failure inside optimizer.step() leaves some parameters updated and others not.
    if (!m_step_start_buffers.empty() && optimizer_updates(*m_optimizer) != m_updates_at_step_start)
        in_optimizer_step = true;
    if (in_optimizer_step) {
        // The parameters may be half updated: the last checkpoint on disk is the state to keep.
        log("the failure came inside the optimizer update: keeping the previous checkpoint");
    } else if (m_last_saved_step == m_progress.step) {
        path = m_last_saved_path;
    } else {
        try {
            checkpoint("emergency", /*mid_step=*/!m_step_start_buffers.empty());
            path = m_last_saved_path;
            log(fmt::format("emergency checkpoint at step {} written", m_progress.step));
        } catch (const std::exception& e) {
            log(std::string("emergency checkpoint failed: ") + e.what());
        }
    }
    report(protocol::Oom{first_line, m_progress.step, path, m_peak_device, m_peak_device_reserved});
    throw RunEnd{exit_code::oom};
}

void Trainer::handle_peer_lost(const std::string& message) {
    m_bar.finish();
    const std::string first_line = message.substr(0, message.find('\n'));
    log("another rank is gone: " + first_line);
    // The step's gradients (this rank's share, perhaps not reduced) are dropped, as on an OOM.
    m_optimizer->zero_grad();
    const bool inside_step = !m_step_start_buffers.empty();
    std::int64_t step = m_progress.step;
    std::string path;
    if (inside_step && optimizer_updates(*m_optimizer) != m_updates_at_step_start) {
        // The normalisation statistics' all-reduce comes after the update: the parameters moved
        // on while the statistics were not averaged. The last checkpoint on disk is kept.
        log("the failure came after this step's optimizer update: keeping the previous "
            "checkpoint");
        step = m_last_saved_step;
        path = m_last_saved_path;
    } else if (m_last_saved_step == m_progress.step) {
        path = m_last_saved_path;
    } else {
        try {
            checkpoint("emergency", /*mid_step=*/inside_step);
            path = m_last_saved_path;
            log(fmt::format("emergency checkpoint at step {} written", m_progress.step));
        } catch (const std::exception& e) {
            log(std::string("emergency checkpoint failed: ") + e.what());
            step = m_last_saved_step;
            path = m_last_saved_path;
        }
    }
    report(protocol::Stopping{"another rank is gone: " + first_line, step, path,
                              exit_code::peer_lost});
    throw RunEnd{exit_code::peer_lost};
}

}  // namespace smartcash::train
