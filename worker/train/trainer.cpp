#include "worker/train/trainer.hpp"

#include <ATen/Context.h>
#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <limits>

#include "common/atomic_file.hpp"
#include "common/commands.hpp"
#include "common/exit_codes.hpp"
#include "common/run_dir.hpp"
#include "worker/channel/stop_request.hpp"
#include "worker/data/dataset_source.hpp"
#include "worker/device/blas.hpp"
#include "worker/device/process_memory.hpp"
#include "worker/device/step_memory.hpp"
#include "worker/model/pretrained.hpp"
#include "worker/train/batch.hpp"
#include "worker/train/optimizer.hpp"
#include "worker/train/resume_check.hpp"

namespace smartcash::train {

namespace {

std::string iso_time() {
    auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    return buf;
}

}  // namespace

Trainer::Trainer(Config config, const TierConfig& tier, std::string run_dir, ReportChannel* channel,
                 dist::DistEnv dist)
    : m_config(std::move(config)),
      m_tier(tier),
      m_run_dir(std::move(run_dir)),
      m_channel(channel),
      m_dist(std::move(dist)),
      m_device(resolve_device(tier.device)),
      m_bar(stdout, ui::stdout_is_terminal()) {}

void Trainer::log(const std::string& line) { std::cerr << line << std::endl; }

std::int64_t Trainer::total_steps() const {
    return std::int64_t{m_phase2_start + m_config.training.phase2.epochs} * m_steps_per_epoch;
}

std::int64_t Trainer::phase_steps(int phase) const {
    return (phase == 1 ? m_phase2_start : m_config.training.phase2.epochs) * m_steps_per_epoch;
}

std::int64_t Trainer::step_in_phase() const {
    return m_progress.step -
           (phase_of(m_progress.epoch) == 2 ? std::int64_t{m_phase2_start} * m_steps_per_epoch : 0);
}

DeviceMemory Trainer::note_device_memory() {
    const auto d = device_memory(m_device);
    m_peak_device = std::max({m_peak_device, d.allocated, d.peak_allocated});
    m_peak_device_reserved = std::max({m_peak_device_reserved, d.reserved, d.peak_reserved});
    return d;
}

void Trainer::setup() {
    const auto& tc = m_config.training;
    dist::check_world_fits(m_config, m_tier, m_dist.world_size);
    apply_threads(m_tier.threads);
    if (m_device.is_cpu()) {
        if (auto warning = reference_blas_warning(blas_in_use()); !warning.empty()) log(warning);
    }
    apply_allocator_policy(m_tier.cleanup);
    data::set_image_threads(m_tier.threads);
    if (auto line = limit_device_memory(m_device, m_tier.device_memory_limit); !line.empty())
        log(line);
    if (tc.deterministic) {
        // Same tier, same result: ask for deterministic kernels where LibTorch has a choice.
        at::globalContext().setDeterministicAlgorithms(true, /*warn_only=*/true);
        at::globalContext().setBenchmarkCuDNN(false);
    }
    make_directories(m_run_dir);
    make_directories(run_dir::checkpoints(m_run_dir));

    m_dataset_path =
        data::prepare_dataset(m_config, m_run_dir, [this](const std::string& line) { log(line); });
    m_data = data::open_dataset(m_dataset_path, m_config.data.bad_labels);
    m_dataset_identity = data::dataset_identity(m_data);
    if (m_data.skipped > 0)
        log(fmt::format("dataset: skipped {} bad label lines (first: {}:{}: {})", m_data.skipped,
                        m_data.issues.front().file, m_data.issues.front().line,
                        m_data.issues.front().message));
    if (m_data.valid.empty()) throw data::DataError(m_dataset_path + ": the valid split is empty");
    m_steps_per_epoch = static_cast<std::int64_t>(m_data.train.size()) / tc.effective_batch;
    if (m_steps_per_epoch == 0)
        throw data::DataError(
            fmt::format("{}: the train split has {} images, fewer than training.effective_batch {}",
                        m_dataset_path, m_data.train.size(), tc.effective_batch));

    if (m_dist.distributed()) {
        log(fmt::format("rank {} of {}: joining the others at {}:{}", m_dist.rank,
                        m_dist.world_size, m_dist.master_addr, m_dist.master_port));
        m_group = dist::ProcessGroupContext::connect(m_dist);
        // The ranks index the same epoch order: their train splits must have the same size.
        const auto n = static_cast<std::int64_t>(m_data.train.size());
        const auto sizes = m_group->allreduce_max({n, -n}, "train split size");
        if (sizes[0] != -sizes[1])
            throw data::DataError(fmt::format(
                "{}: the ranks' train splits differ ({} to {} images; this rank has {}): every "
                "rank needs the same dataset",
                m_dataset_path, -sizes[1], sizes[0], n));
    }

    seed_generators(tc.seed, m_device);
    m_model = model::Detector(model::options_from(m_config.model));
    m_model->to(m_device);
    m_model->set_activation_checkpointing(m_tier.activation_checkpointing);
    m_model->set_channels_last(m_device.is_cpu());
    m_optimizer = make_optimizer(*m_model, tc);
    m_loss = std::make_unique<YoloLoss>(tc.loss, m_model->anchors());
    m_store =
        std::make_unique<CheckpointStore>(run_dir::checkpoints(m_run_dir), tc.keep_checkpoints);
    m_phase2_start = tc.phase1.epochs;

    std::size_t model_bytes = 0;
    for (const auto& [name, t] : model_tensors(*m_model))
        model_bytes += t.numel() * t.element_size();
    m_reserve.hold(4 * model_bytes + (64u << 20));

    m_prefetcher = std::make_unique<SamplePrefetcher>();
    m_hooks = FaultHooks::from_environment();
    if (m_hooks.nonfinite_from >= 0) {
        // The real forward and backward passes, with gains that make the loss and gradients NaN.
        LossConfig poisoned = tc.loss;
        poisoned.box = poisoned.obj = poisoned.cls = std::numeric_limits<double>::quiet_NaN();
        m_poisoned_loss = std::make_unique<YoloLoss>(poisoned, m_model->anchors());
    }
}

std::optional<LoadedCheckpoint> Trainer::load_resume_checkpoint(
    std::vector<std::string>* problems) {
    auto ckpt = m_store->load_newest_good(problems);
    if (!m_group) return ckpt;
    // Each rank has its own run directory: the ranks resume from the newest step they all have.
    while (true) {
        const std::int64_t mine = ckpt ? ckpt->meta.progress.step : -1;
        const auto steps = m_group->allreduce_max({mine, -mine}, "newest checkpoint");
        const std::int64_t newest = steps[0], oldest = -steps[1];
        if (newest == oldest) return ckpt;
        if (oldest < 0)
            throw ConfigError(
                m_config.source_path, 0, 0, "RANK",
                fmt::format("cannot resume: a rank has no checkpoint in its run directory while "
                            "another has one of step {} (this rank, {}: {}); give every rank "
                            "its own run directory back, or start all ranks in new ones",
                            newest, m_dist.rank,
                            mine < 0 ? std::string("none") : "step " + std::to_string(mine)));
        if (mine > oldest) {
            log(
                fmt::format("rank {}: resuming from step {}, the newest checkpoint every rank "
                            "has (this rank's newest is step {})",
                            m_dist.rank, oldest, mine));
            ckpt = m_store->load_newest_good(problems, oldest);
        }
    }
}

void Trainer::resume() {
    std::vector<std::string> problems;
    for (const auto& name : m_store->remove_interrupted_writes())
        log("removed " + name + ", left by an interrupted checkpoint write");
    auto ckpt = load_resume_checkpoint(&problems);
    for (const auto& p : problems) {
        log("checkpoint rejected: " + p);
        report(protocol::CheckpointRejected{p});
    }
    if (!ckpt) {
        if (!problems.empty()) log("no good checkpoint left: starting from scratch");
        m_progress = TrainProgress{};
        m_progress.order = epoch_order(m_data.train.size(), m_config.training.seed, 0);
        m_pretrained = model::start_from_pretrained(*m_model, m_config.model, m_config.source_path);
        if (!m_pretrained.is_null()) log(model::pretrained_summary(m_pretrained));
    } else {
        if (ckpt->meta.world_size != m_dist.world_size)
            throw ConfigError(
                m_config.source_path, 0, 0, "WORLD_SIZE",
                fmt::format("cannot resume {}: it was written by a run with world size {} and this "
                            "launch has world size {}; a data-parallel run resumes with the "
                            "number of ranks it started with (start a new run directory, or "
                            "launch {} rank{})",
                            ckpt->path, ckpt->meta.world_size, m_dist.world_size,
                            ckpt->meta.world_size, ckpt->meta.world_size == 1 ? "" : "s"));
        check_resume_compatible(*ckpt, m_config, m_data, m_dataset_identity, m_dataset_path);
        restore_checkpoint(*ckpt, *m_model, *m_optimizer, m_device);
        m_progress = ckpt->meta.progress;
        m_resumed_step = m_progress.step;
        m_pretrained = ckpt->meta.pretrained;  // never reloaded over a checkpoint
        m_last_saved_step = m_progress.step;
        m_last_saved_path = ckpt->path;
        if (m_progress.phase_cut) m_phase2_start = phase2_start_after_cut(m_progress);
        log(fmt::format("resumed from {} (step {}, epoch {}, {} tier)", ckpt->path, m_progress.step,
                        m_progress.epoch + 1, ckpt->meta.tier));
    }
    if (m_group) {
        // Rank 0's weights and statistics for all: the ranks start identical even where their
        // initialisation (or a pretrained file) differed.
        std::vector<torch::Tensor> tensors;
        for (auto& [name, t] : model_tensors(*m_model)) tensors.push_back(t);
        m_group->broadcast_from_rank0(tensors, "initial weights");
    }
    const std::string device = device_name(m_device);
    if (m_progress.tiers.empty() || m_progress.tiers.back().value("tier", "") != m_tier.name ||
        m_progress.tiers.back().value("micro_batch", 0) != m_tier.micro_batch) {
        m_progress.tiers.push_back({{"tier", m_tier.name},
                                    {"device", device},
                                    {"micro_batch", m_tier.micro_batch},
                                    {"threads", m_tier.threads},
                                    {"from_step", m_progress.step},
                                    {"time", iso_time()}});
    }
}

void Trainer::apply_phase() {
    const int phase = phase_of(m_progress.epoch);
    set_backbone_trainable(*m_model, phase == 2);
    m_model->train();
    // A frozen backbone also keeps its normalisation statistics: phase 1 leaves it untouched.
    if (phase == 1) m_model->backbone_module().eval();
}

void Trainer::append_metrics(const protocol::MetricsRecord& record) {
    try {
        append_line_durable(run_dir::metrics(m_run_dir), protocol::to_json(record).dump(),
                            /*fsync=*/false);
    } catch (const IoError& e) {
        log(std::string("metrics not written: ") + e.what());
    }
}

void Trainer::send_progress(bool force) {
    const auto now = Clock::now();
    if (!force && now - m_last_progress < std::chrono::seconds(1)) return;
    m_last_progress = now;
    const auto mem = read_process_memory();
    const auto dev = note_device_memory();
    const std::int64_t total = total_steps();
    const double eta = m_images_per_s > 0 ? static_cast<double>(total - m_progress.step) *
                                                m_config.training.effective_batch / m_images_per_s
                                          : -1.0;
    protocol::Progress progress;
    progress.step = m_progress.step;
    progress.total_steps = total;
    progress.epoch = m_progress.epoch;
    progress.phase = phase_of(m_progress.epoch);
    progress.loss = m_last_step.loss;
    progress.loss_box = m_last_step.box;
    progress.loss_obj = m_last_step.obj;
    progress.loss_cls = m_last_step.cls;
    progress.lr = m_lr;
    progress.images_per_s = m_images_per_s;
    progress.rss = mem.rss;
    progress.device_mem = dev.allocated;
    progress.device_reserved = dev.reserved;
    progress.skipped_steps = m_progress.skipped_steps;
    progress.eta_s = eta;
    report(progress);
    ui::ProgressState s;
    s.epoch = m_progress.epoch + 1;
    s.epochs = m_phase2_start + m_config.training.phase2.epochs;
    s.phase = phase_of(m_progress.epoch);
    s.step_in_epoch = static_cast<long>(m_progress.step_in_epoch);
    s.steps_in_epoch = static_cast<long>(m_steps_per_epoch);
    s.loss = m_last_step.loss;
    s.loss_box = m_last_step.box;
    s.loss_obj = m_last_step.obj;
    s.loss_cls = m_last_step.cls;
    s.images_per_s = m_images_per_s;
    s.eta_s = eta;
    s.rss = mem.rss;
    s.device_mem = dev.allocated;
    s.tier = m_tier.name;
    s.lr = m_lr;
    m_bar.update(s);
}

void Trainer::poll_commands() {
    while (auto cmd = m_channel ? m_channel->poll_command() : std::nullopt) {
        if (const auto* stop = std::get_if<protocol::CheckpointAndStop>(&*cmd))
            request_stop(stop->reason.empty() ? "requested" : stop->reason,
                         stop->exit_code.value_or(exit_code::requested_stop));
        else if (std::holds_alternative<protocol::CheckpointCommand>(*cmd))
            (m_group ? m_checkpoint_wanted : m_pending_checkpoint) = true;
    }
}

bool Trainer::between_micro() {
    poll_commands();
    send_progress(false);
    // With ranks a step is never left half done: the others wait for this rank's gradients. A
    // stop waits for the step boundary, where all ranks agree on it.
    return m_group || !stop_requested();
}

bool Trainer::agree_at_step_boundary() {
    if (!m_group) return between_micro();
    poll_commands();
    send_progress(false);
    // All-reduce MAX of [stop exit code + 1 (0: no stop), checkpoint wanted]: a stop on any rank
    // stops every rank after the same step, a checkpoint request on any rank makes all write one.
    const std::int64_t stop = stop_requested() ? stop_exit_code() + 1 : 0;
    const auto agreed =
        m_group->allreduce_max({stop, m_checkpoint_wanted ? 1 : 0}, "step boundary flags");
    m_checkpoint_wanted = false;
    if (agreed[1] > 0) m_pending_checkpoint = true;
    if (agreed[0] > 0 && !stop_requested())
        request_stop("another rank stopped", static_cast<int>(agreed[0] - 1));
    return agreed[0] == 0;
}

void Trainer::train_epoch() {
    apply_phase();
    m_epoch_started = Clock::now();
    const auto& tc = m_config.training;
    while (m_progress.step_in_epoch < m_steps_per_epoch) {
        m_hooks.freeze_at(m_progress.step, [this](const std::string& line) { log(line); });
        if (!agree_at_step_boundary()) stop_now();
        if (auto line = m_hooks.limit_address_space_at(m_progress.step); !line.empty()) log(line);
        run_one_step();
        const bool epoch_done = m_progress.step_in_epoch >= m_steps_per_epoch;
        if (!epoch_done &&
            ((tc.checkpoint_every_steps > 0 && m_progress.step % tc.checkpoint_every_steps == 0) ||
             m_pending_checkpoint)) {
            m_pending_checkpoint = false;
            checkpoint("step", false);
        }
    }
}

int Trainer::run() {
    setup();
    resume();
    log(fmt::format(
        "training on {} ({} tier: {}micro-batch {} x {} accumulation = {} images/step, {} "
        "threads); {} train / {} valid images, {} steps per epoch",
        device_name(m_device), m_tier.name,
        m_group ? fmt::format("{} ranks x ", m_dist.world_size) : std::string(), m_tier.micro_batch,
        m_tier.accumulation / m_dist.world_size, m_config.training.effective_batch, m_tier.threads,
        m_data.train.size(), m_data.valid.size(), m_steps_per_epoch));
    report(protocol::Hello{static_cast<std::int64_t>(::getpid()), m_tier.name,
                           device_name(m_device), m_tier.threads, m_tier.micro_batch,
                           m_tier.accumulation, m_resumed_step, total_steps(), m_progress.epoch,
                           phase_of(m_progress.epoch)});
    try {
        try {
            while (!m_progress.finished) {
                if (m_progress.step_in_epoch < m_steps_per_epoch) train_epoch();
                end_epoch();
            }
        } catch (const std::bad_alloc& e) {
            // An allocation outside the forward/backward pass (a checkpoint's serialisation, the
            // next batch's images, a metrics line) failed: the completed steps are still saved.
            handle_oom(e.what(), false);
        } catch (const dist::DistributedError& e) {
            // A collective of the loop (the step boundary's flags, the gradients, the loss
            // figures, the normalisation statistics) lost another rank.
            handle_peer_lost(e.what());
        } catch (const std::exception& e) {
            if (!is_out_of_memory(e)) throw;
            handle_oom(e.what(), false);
        }
    } catch (const RunEnd& end) {
        return end.code;
    }
    log(fmt::format("done: {} steps, best mAP@0.5 {:.3f} (epoch {}); best weights in {}/best.pt",
                    m_progress.step, m_progress.best_map50, m_progress.best_epoch + 1,
                    run_dir::checkpoints(m_run_dir)));
    report(protocol::Done{m_progress.step, m_progress.epoch, m_progress.best_map50,
                          m_progress.skipped_steps, m_progress.finish_reason});
    return exit_code::done;
}

}  // namespace smartcash::train
