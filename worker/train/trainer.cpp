#include "worker/train/trainer.hpp"

#include <ATen/Context.h>
#include <fmt/core.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <new>
#include <optional>

#include "common/atomic_file.hpp"
#include "common/commands.hpp"
#include "common/exit_codes.hpp"
#include "common/file_lock.hpp"
#include "common/reports.hpp"
#include "common/run_dir.hpp"
#include "common/units.hpp"
#include "worker/data/dataset.hpp"
#include "worker/data/labels.hpp"
#include "worker/data/synth.hpp"
#include "worker/train/batch.hpp"
#include "worker/train/checkpoint.hpp"
#include "worker/train/device.hpp"
#include "worker/train/optimizer.hpp"
#include "worker/train/process_memory.hpp"
#include "worker/model/pretrained.hpp"
#include "worker/train/report_channel.hpp"
#include "worker/train/step_memory.hpp"
#include "worker/train/stop_request.hpp"
#include "worker/train/validation.hpp"
#include "worker/ui/progress.hpp"
#include "worker/ui/summary.hpp"

namespace smartcash::train {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

bool is_out_of_memory(const std::string& m) {
    return m.find("out of memory") != std::string::npos ||           // CUDA, MPS
           m.find("can't allocate memory") != std::string::npos ||   // CPU allocator
           m.find("not enough memory") != std::string::npos ||       // CPU allocator (older text)
           m.find("Cannot allocate memory") != std::string::npos ||  // errno 12 in a message
           m.find("Insufficient memory") != std::string::npos ||     // OpenCV
           m.find("Failed to allocate") != std::string::npos ||      // OpenCV
           m.find("std::bad_alloc") != std::string::npos;
}

bool is_out_of_memory(const std::exception& e) {
    if (dynamic_cast<const std::bad_alloc*>(&e)) return true;
    // The CUDA allocator throws this type (LibTorch 1.13 on, the oldest this builds against);
    // the text is the fallback for allocators that throw a plain c10::Error (MPS in many 2.x
    // releases, the CPU allocator).
    if (dynamic_cast<const c10::OutOfMemoryError*>(&e)) return true;
    return is_out_of_memory(std::string(e.what()));
}

StepResult train_step(model::DetectorImpl& model, torch::optim::AdamW& optimizer,
                      const YoloLoss& loss, const std::vector<data::Sample>& samples,
                      int micro_batch, int img_size, double grad_clip, const torch::Device& device,
                      const std::function<bool()>& between_micro) {
    StepResult result;
    const auto n = samples.size();
    const double effective = static_cast<double>(n);
    optimizer.zero_grad();
    for (std::size_t start = 0; start < n; start += static_cast<std::size_t>(micro_batch)) {
        std::vector<data::Sample> part(
            samples.begin() + static_cast<std::ptrdiff_t>(start),
            samples.begin() + static_cast<std::ptrdiff_t>(std::min(n, start + micro_batch)));
        auto batch = collate(part, device);
        auto outputs = model.forward(batch.images);
        auto parts = loss(outputs, batch.targets, img_size);
        (parts.sum / effective).backward();
        const double share = static_cast<double>(part.size()) / effective;
        result.loss += (parts.box + parts.obj + parts.cls) * share;
        result.box += parts.box * share;
        result.obj += parts.obj * share;
        result.cls += parts.cls * share;
        ++result.micro_batches;
        const bool last = start + static_cast<std::size_t>(micro_batch) >= n;
        if (!last && between_micro && !between_micro()) {
            optimizer.zero_grad();
            return result;
        }
    }
    std::vector<torch::Tensor> with_grad;
    for (auto& group : optimizer.param_groups())
        for (auto& p : group.params())
            if (p.grad().defined()) with_grad.push_back(p);
    if (grad_clip > 0) {
        result.grad_norm = torch::nn::utils::clip_grad_norm_(with_grad, grad_clip);
    } else if (!with_grad.empty()) {
        torch::NoGradGuard no_grad;
        std::vector<torch::Tensor> norms;
        for (auto& p : with_grad) norms.push_back(p.grad().norm());
        result.grad_norm = torch::stack(norms).norm().item<double>();
    }
    if (!std::isfinite(result.loss) || !std::isfinite(result.grad_norm)) {
        // One bad batch (or the start of a divergence): an update from it would put NaN into
        // the weights and the optimizer state for good. The step is skipped instead.
        optimizer.zero_grad();
        result.skipped = true;
        result.completed = true;
        return result;
    }
    optimizer.step();
    release_gradients(optimizer);
    result.completed = true;
    return result;
}

namespace {

/// Address space kept in reserve so that writing the emergency checkpoint still works after an
/// allocation failed under an address-space limit.
class EmergencyReserve {
  public:
    void hold(std::size_t bytes) {
        release();
        void* p =
            ::mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p != MAP_FAILED) {
            m_ptr = p;
            m_size = bytes;
        }
    }
    void release() {
        if (m_ptr) ::munmap(m_ptr, m_size);
        m_ptr = nullptr;
        m_size = 0;
    }
    ~EmergencyReserve() { release(); }

  private:
    void* m_ptr = nullptr;
    std::size_t m_size = 0;
};

/// Sum of AdamW's per-parameter update counts. It moves as soon as optimizer.step() has updated
/// any parameter, so a failure that leaves this changed came from inside the update.
std::int64_t optimizer_updates(torch::optim::AdamW& optimizer) {
    std::int64_t total = 0;
    for (auto& entry : optimizer.state())
        total += 1 + static_cast<torch::optim::AdamWParamState&>(*entry.second).step();
    return total;
}

/// Thrown out of the loop to end the run with an exit code after reporting.
struct RunEnd {
    int code;
};

/// Too many optimizer steps in a row had a non-finite loss or gradient norm.
class DivergedError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

std::string iso_time() {
    auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    return buf;
}

class Trainer {
  public:
    Trainer(Config config, const TierConfig& tier, std::string run_dir, ReportChannel* channel)
        : m_config(std::move(config)),
          m_tier(tier),
          m_run_dir(std::move(run_dir)),
          m_channel(channel),
          m_device(resolve_device(tier.device)),
          m_bar(stdout, ui::stdout_is_terminal()) {}

    int run();

  private:
    void setup();
    void resume();
    void train_epoch();
    void end_epoch();
    void run_one_step();
    bool between_micro();
    /// A complete copy of the model's buffers (BatchNorm statistics) as the step begins.
    std::vector<torch::Tensor> snapshot_buffers();
    void restore_step_start_buffers();
    void checkpoint(const std::string& kind, bool mid_step);
    [[noreturn]] void stop_now();
    [[noreturn]] void handle_oom(const std::string& message, bool in_optimizer_step);
    void report(protocol::WorkerReport message) {
        if (m_channel) m_channel->send(std::move(message));
    }
    void send_progress(bool force);
    void log(const std::string& line) { std::cerr << line << std::endl; }
    int phase_of(int epoch) const { return epoch < m_phase2_start ? 1 : 2; }
    std::int64_t phase_steps(int phase) const {
        return (phase == 1 ? m_phase2_start : m_config.training.phase2.epochs) * m_steps_per_epoch;
    }
    std::int64_t step_in_phase() const {
        return m_progress.step - (phase_of(m_progress.epoch) == 2
                                      ? std::int64_t{m_phase2_start} * m_steps_per_epoch
                                      : 0);
    }
    void apply_phase();
    void append_metrics(const nlohmann::json& line);
    DeviceMemory note_device_memory() {
        const auto d = device_memory(m_device);
        m_peak_device = std::max({m_peak_device, d.allocated, d.peak_allocated});
        m_peak_device_reserved = std::max({m_peak_device_reserved, d.reserved, d.peak_reserved});
        return d;
    }

    Config m_config;
    TierConfig m_tier;
    std::string m_run_dir;
    ReportChannel* m_channel;
    torch::Device m_device;
    ui::ProgressBar m_bar;

    data::Dataset m_data;
    std::string m_dataset_path;  ///< as opened (the generated folder for "synthetic")
    data::DatasetIdentity m_dataset_identity;
    model::Detector m_model{nullptr};
    std::unique_ptr<torch::optim::AdamW> m_optimizer;
    std::unique_ptr<YoloLoss> m_loss;
    std::unique_ptr<CheckpointStore> m_store;
    TrainProgress m_progress;
    std::int64_t m_steps_per_epoch = 0;
    int m_phase2_start = 0;  // epoch at which phase 2 begins
    std::int64_t m_resumed_step = 0;
    Json m_pretrained;  // the weights file this run started from (null: random)
    std::int64_t m_last_saved_step = -1;
    std::string m_last_saved_path;  ///< the store's path of that checkpoint
    std::vector<torch::Tensor> m_step_start_buffers;
    EmergencyReserve m_reserve;
    bool m_in_optimizer_step = false;
    std::int64_t m_updates_at_step_start = 0;  // optimizer_updates() when the current step began
    bool m_pending_checkpoint = false;         // the supervisor asked for a checkpoint

    // Live figures for reports.
    StepResult m_last_step;
    double m_lr = 0;
    double m_images_per_s = 0;
    Clock::time_point m_last_progress{};
    Clock::time_point m_epoch_started{};
    std::uint64_t m_peak_rss = 0;
    std::uint64_t m_peak_device = 0;           // allocated on the device
    std::uint64_t m_peak_device_reserved = 0;  // held from the driver
    std::int64_t m_rlimit_at_step = -1;
    std::uint64_t m_rlimit_headroom = 0;
    std::int64_t m_snapshot_oom_at_step = -1;
    std::int64_t m_nonfinite_from = -1, m_nonfinite_count = 0;
    std::unique_ptr<YoloLoss> m_nonfinite_loss;
};

void Trainer::setup() {
    const auto& tc = m_config.training;
    apply_threads(m_tier.threads);
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

    // Dataset: the embedded synthetic one is generated into the run directory on first use.
    std::string dataset_path = m_config.data.dataset;
    if (dataset_path == "synthetic") {
        data::SynthOptions so;
        so.out = run_dir::data(m_run_dir);
        so.images = m_config.data.synthetic.images;
        so.size = m_config.data.synthetic.size;
        so.seed = m_config.data.synthetic.seed;
        if (!data::synthetic_complete(so)) {
            log(fmt::format("generating the synthetic dataset ({} images, {} px) in {}", so.images,
                            so.size, so.out));
            data::synthesize(so);
        }
        dataset_path = so.out;
    }
    m_data = data::open_dataset(dataset_path, m_config.data.bad_labels);
    m_dataset_path = dataset_path;
    m_dataset_identity = data::dataset_identity(m_data);
    if (m_data.skipped > 0)
        log(fmt::format("dataset: skipped {} bad label lines (first: {}:{}: {})", m_data.skipped,
                        m_data.issues.front().file, m_data.issues.front().line,
                        m_data.issues.front().message));
    if (m_data.valid.empty()) throw data::DataError(dataset_path + ": the valid split is empty");
    m_steps_per_epoch = static_cast<std::int64_t>(m_data.train.size()) / tc.effective_batch;
    if (m_steps_per_epoch == 0)
        throw data::DataError(
            fmt::format("{}: the train split has {} images, fewer than training.effective_batch {}",
                        dataset_path, m_data.train.size(), tc.effective_batch));

    seed_generators(tc.seed, m_device);
    m_model = model::Detector(model::options_from(m_config.model));
    m_model->to(m_device);
    m_model->set_activation_checkpointing(m_tier.activation_checkpointing);
    m_optimizer = make_optimizer(*m_model, tc);
    m_loss = std::make_unique<YoloLoss>(tc.loss, m_model->anchors());
    m_store =
        std::make_unique<CheckpointStore>(run_dir::checkpoints(m_run_dir), tc.keep_checkpoints);
    m_phase2_start = tc.phase1.epochs;

    std::size_t model_bytes = 0;
    for (const auto& [name, t] : model_tensors(*m_model))
        model_bytes += t.numel() * t.element_size();
    m_reserve.hold(4 * model_bytes + (64u << 20));

    if (const char* at = std::getenv("SMARTCASH_TEST_RLIMIT_AS_AT_STEP")) {
        m_rlimit_at_step = std::atoll(at);
#if defined(__GLIBC__)
        // glibc raises its mmap threshold as large blocks are freed and then serves a step from
        // memory it already holds, so a cap at the current size might never be hit. A fixed
        // threshold maps every large tensor afresh: the next step really needs new address space.
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
    }
    if (const char* h = std::getenv("SMARTCASH_TEST_RLIMIT_AS_HEADROOM"))
        m_rlimit_headroom = parse_size(h);
    // Test hook: the buffer snapshot at the start of this step asks the allocator for an
    // impossible tensor half-way through, so it fails for real in the allocator.
    if (const char* at = std::getenv("SMARTCASH_TEST_SNAPSHOT_OOM_AT_STEP"))
        m_snapshot_oom_at_step = std::atoll(at);
    // Test hook: FROM[:COUNT] gives the optimizer steps FROM .. FROM+COUNT-1 (numbered by the
    // steps completed before them; no COUNT: all from FROM on) a loss whose gains are NaN, so
    // the loss and the gradients of the real forward and backward passes are non-finite.
    if (const char* h = std::getenv("SMARTCASH_TEST_NONFINITE_LOSS")) {
        long long from = -1, count = 0;
        std::sscanf(h, "%lld:%lld", &from, &count);
        m_nonfinite_from = from;
        m_nonfinite_count = count;
        LossConfig poisoned = tc.loss;
        poisoned.box = poisoned.obj = poisoned.cls = std::numeric_limits<double>::quiet_NaN();
        m_nonfinite_loss = std::make_unique<YoloLoss>(poisoned, m_model->anchors());
    }
}

void Trainer::resume() {
    std::vector<std::string> problems;
    for (const auto& name : m_store->remove_interrupted_writes())
        log("removed " + name + ", left by an interrupted checkpoint write");
    auto ckpt = m_store->load_newest_good(&problems);
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
        // The model and the effective batch must match; the tier may change (that is the point).
        Config saved = parse_config(ckpt->meta.config_yaml, ckpt->path + " (saved config)");
        auto diffs = resume_incompatibilities(saved, m_config);
        if (!diffs.empty()) {
            std::string keys;
            for (const auto& d : diffs) keys += (keys.empty() ? "" : ", ") + d;
            throw ConfigError(
                m_config.source_path, 0, 0, diffs.front(),
                fmt::format(
                    "cannot resume {}: {} changed since the checkpoint was written (start a new "
                    "run directory, or restore the old value)",
                    ckpt->path, keys));
        }
        // The data must be the same too: the data order and the position in it index the train
        // split. A checkpoint of an older worker has no dataset identity; its data order still
        // tells the train split's size.
        std::vector<std::string> changes;
        if (ckpt->meta.dataset)
            changes = data::dataset_changes(*ckpt->meta.dataset, m_dataset_identity);
        else if (ckpt->meta.progress.order.size() != m_data.train.size())
            changes.push_back(fmt::format("the train split has {} images, the checkpoint's had {}",
                                          m_data.train.size(), ckpt->meta.progress.order.size()));
        if (!changes.empty()) {
            std::string what;
            for (const auto& c : changes) what += (what.empty() ? "" : "; ") + c;
            throw ConfigError(m_config.source_path, 0, 0, "data.dataset",
                              fmt::format("cannot resume {}: the dataset {} changed since the "
                                          "checkpoint was written: {} (start a new run directory, "
                                          "or restore the dataset)",
                                          ckpt->path, m_dataset_path, what));
        }
        restore_checkpoint(*ckpt, *m_model, *m_optimizer, m_device);
        m_progress = ckpt->meta.progress;
        m_resumed_step = m_progress.step;
        m_pretrained = ckpt->meta.pretrained;  // never reloaded over a checkpoint
        m_last_saved_step = m_progress.step;
        m_last_saved_path = ckpt->path;
        if (m_progress.phase_cut) {
            // Phase 1 ended early: phase 2 starts after the last epoch recorded for phase 1.
            int last_p1 = -1;
            for (const auto& m : m_progress.metrics)
                if (m.value("phase", 1) == 1) last_p1 = std::max(last_p1, m.value("epoch", -1));
            m_phase2_start = last_p1 + 1;
        }
        log(fmt::format("resumed from {} (step {}, epoch {}, {} tier)", ckpt->path, m_progress.step,
                        m_progress.epoch + 1, ckpt->meta.tier));
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

void Trainer::append_metrics(const nlohmann::json& line) {
    try {
        append_line_durable(run_dir::metrics(m_run_dir), line.dump(), /*fsync=*/false);
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
    m_peak_rss = std::max(m_peak_rss, mem.rss);
    const std::int64_t total =
        std::int64_t{m_phase2_start + m_config.training.phase2.epochs} * m_steps_per_epoch;
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

bool Trainer::between_micro() {
    while (auto cmd = m_channel ? m_channel->poll_command() : std::nullopt) {
        if (const auto* stop = std::get_if<protocol::CheckpointAndStop>(&*cmd))
            request_stop(stop->reason.empty() ? "requested" : stop->reason,
                         stop->exit_code.value_or(exit_code::requested_stop));
        else if (std::holds_alternative<protocol::CheckpointCommand>(*cmd))
            m_pending_checkpoint = true;
    }
    send_progress(false);
    return !stop_requested();
}

void Trainer::checkpoint(const std::string& kind, bool mid_step) {
    CheckpointMeta meta;
    meta.kind = kind;
    meta.phase = phase_of(m_progress.epoch);
    meta.progress = m_progress;
    meta.tier = m_tier.name;
    meta.device = device_name(m_device);
    meta.micro_batch = m_tier.micro_batch;
    meta.effective_batch = m_config.training.effective_batch;
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
    report(protocol::CheckpointWritten{saved.path, saved.step, m_progress.epoch, saved.sha256, kind});
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

void Trainer::run_one_step() {
    const auto& tc = m_config.training;
    const int phase = phase_of(m_progress.epoch);
    // Per-step seeding makes stochastic depth independent of where the run was resumed.
    seed_generators(mix_seed(tc.seed, 0x57E9ull, static_cast<std::uint64_t>(m_progress.step)),
                    m_device);
    // Until the snapshot below is complete, the model is that of the last completed step and a
    // checkpoint takes its live buffers.
    m_step_start_buffers.clear();
    m_updates_at_step_start = optimizer_updates(*m_optimizer);
    m_lr = apply_learning_rates(*m_optimizer, tc, phase, step_in_phase(), phase_steps(phase));

    const auto started = Clock::now();
    std::vector<data::Sample> samples;
    const std::int64_t first = m_progress.step_in_epoch * tc.effective_batch;
    for (std::int64_t k = 0; k < tc.effective_batch; ++k) {
        const std::int64_t pos = first + k;
        const auto index =
            static_cast<std::size_t>(m_progress.order.at(static_cast<std::size_t>(pos)));
        const std::uint64_t seed =
            mix_seed(tc.seed, static_cast<std::uint64_t>(m_progress.epoch) + 1,
                     static_cast<std::uint64_t>(pos));
        samples.push_back(data::load_sample(m_data.train, index, m_config.model.img_size,
                                            &m_config.data.augment, seed));
    }
    StepResult r;
    try {
        // The snapshot allocates a copy of every buffer: it belongs to the step's out-of-memory
        // handling like the forward and backward passes.
        m_step_start_buffers = snapshot_buffers();
        const bool poisoned =
            m_nonfinite_loss && m_progress.step >= m_nonfinite_from &&
            (m_nonfinite_count <= 0 || m_progress.step < m_nonfinite_from + m_nonfinite_count);
        r = train_step(*m_model, *m_optimizer, poisoned ? *m_nonfinite_loss : *m_loss, samples,
                       m_tier.micro_batch, m_config.model.img_size, tc.grad_clip, m_device,
                       [this] { return between_micro(); });
    } catch (const std::bad_alloc& e) {
        handle_oom("std::bad_alloc", false);
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
    append_metrics({{"type", "step"},
                    {"step", m_progress.step},
                    {"epoch", m_progress.epoch},
                    {"phase", phase},
                    {"loss", r.loss},
                    {"box", r.box},
                    {"obj", r.obj},
                    {"cls", r.cls},
                    {"grad_norm", r.grad_norm},
                    {"skipped", r.skipped},
                    {"skipped_steps", m_progress.skipped_steps},
                    {"lr", m_lr},
                    {"images_per_s", ips},
                    {"rss", read_process_memory().rss},
                    {"device_mem", device.allocated},
                    {"device_reserved", device.reserved},
                    {"peak_device_mem", m_peak_device},
                    {"peak_device_reserved", m_peak_device_reserved},
                    {"tier", m_tier.name}});
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
        if (k == buffers.size() / 2 && m_progress.step == m_snapshot_oom_at_step)
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

void Trainer::train_epoch() {
    apply_phase();
    m_epoch_started = Clock::now();
    const auto& tc = m_config.training;
    while (m_progress.step_in_epoch < m_steps_per_epoch) {
        if (!between_micro()) stop_now();
        if (m_rlimit_at_step >= 0 && m_progress.step == m_rlimit_at_step) {
            // Test hook: cap the address space at what is mapped now (plus headroom), so a later
            // allocation really fails.
            m_rlimit_at_step = -1;
            struct rlimit lim {};
            lim.rlim_cur = lim.rlim_max = read_address_space() + m_rlimit_headroom;
            setrlimit(RLIMIT_AS, &lim);
            log(fmt::format("address space limited to {}", format_size(lim.rlim_cur)));
        }
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

void Trainer::end_epoch() {
    m_bar.finish();
    const auto& tc = m_config.training;
    const int epoch = m_progress.epoch;
    const int phase = phase_of(epoch);
    const int total_epochs = m_phase2_start + tc.phase2.epochs;
    nlohmann::json row = {{"type", "epoch"},          {"epoch", epoch},
                          {"phase", phase},           {"step", m_progress.step},
                          {"loss", m_last_step.loss}, {"box", m_last_step.box},
                          {"obj", m_last_step.obj},   {"cls", m_last_step.cls},
                          {"tier", m_tier.name},      {"skipped_steps", m_progress.skipped_steps}};
    const bool last_epoch = epoch + 1 >= total_epochs;
    bool improved = false;
    std::optional<eval::EvalResult> validation;
    if (tc.eval.every_epochs > 0 && ((epoch + 1) % tc.eval.every_epochs == 0 || last_epoch)) {
        eval::EvalResult result;
        try {
            result = evaluate_split(*m_model, m_data.valid, m_data.names, m_config, m_device,
                                    m_tier.micro_batch,
                                    [this](std::size_t, std::size_t) { send_progress(false); });
        } catch (const std::bad_alloc&) {
            handle_oom("std::bad_alloc", false);
        } catch (const c10::Error& e) {
            if (is_out_of_memory(e)) handle_oom(e.what(), false);
            throw;
        }
        row["map50"] = result.map50;
        row["map50_95"] = result.map50_95;
        row["precision"] = result.precision;
        row["recall"] = result.recall;
        nlohmann::json layers = nlohmann::json::object();
        for (const auto& l : result.layers)
            layers[l.name] = {{"map50", l.map50}, {"map50_95", l.map50_95}};
        row["layers"] = layers;
        if (result.map50 > m_progress.best_map50 + tc.early_stopping.min_delta) {
            m_progress.best_map50 = result.map50;
            m_progress.best_epoch = epoch;
            m_progress.stale_epochs = 0;
            improved = true;
        } else {
            ++m_progress.stale_epochs;
        }
        protocol::Eval eval;
        eval.epoch = epoch;
        eval.step = m_progress.step;
        eval.map50 = result.map50;
        eval.map50_95 = result.map50_95;
        eval.precision = result.precision;
        eval.recall = result.recall;
        eval.layers.emplace();
        for (const auto& l : result.layers) (*eval.layers)[l.name] = {l.map50, l.map50_95};
        eval.best_map50 = m_progress.best_map50;
        report(eval);
        validation = std::move(result);
    }
    const double seconds = std::chrono::duration<double>(Clock::now() - m_epoch_started).count();
    const auto mem = read_process_memory();
    row["seconds"] = seconds;
    row["peak_rss"] = mem.peak;
    note_device_memory();
    row["peak_device_mem"] = m_peak_device;
    row["peak_device_reserved"] = m_peak_device_reserved;
    m_progress.metrics.push_back(row);
    append_metrics(row);

    // Summary for people: a table in a terminal, one line in a log.
    if (ui::stdout_is_terminal()) {
        ui::EpochSummary summary;
        summary.epoch = epoch + 1;
        summary.epochs = total_epochs;
        summary.phase = phase;
        summary.loss = m_last_step.loss;
        summary.loss_box = m_last_step.box;
        summary.loss_obj = m_last_step.obj;
        summary.loss_cls = m_last_step.cls;
        summary.validation = validation;
        summary.seconds = seconds;
        summary.peak_rss = mem.peak;
        summary.peak_device_mem = m_peak_device;
        summary.tier = m_tier.name;
        summary.best = improved;
        std::fputs(ui::format_epoch_summary(summary).c_str(), stdout);
        std::fflush(stdout);
    } else {
        std::string layer_text;
        if (row.contains("layers"))
            for (auto& [name, v] : row["layers"].items())
                layer_text += fmt::format(" {} {:.3f}", name, v["map50"].get<double>());
        log(fmt::format(
            "epoch {}/{} phase {} | loss {:.4f} (box {:.4f} obj {:.4f} cls {:.4f}) | mAP@0.5 {} "
            "mAP@0.5:0.95 {} |{} | "
            "{} | peak RSS {} | tier {}{}",
            epoch + 1, total_epochs, phase, m_last_step.loss, m_last_step.box, m_last_step.obj,
            m_last_step.cls,
            row.contains("map50") ? fmt::format("{:.3f}", row["map50"].get<double>()) : "-",
            row.contains("map50_95") ? fmt::format("{:.3f}", row["map50_95"].get<double>()) : "-",
            layer_text, format_duration(seconds), format_size(mem.peak), m_tier.name,
            improved ? " (best)" : ""));
    }

    // Early stopping: in phase 1 it moves on to phase 2; in phase 2 it ends the run.
    const int patience = tc.early_stopping.patience;
    bool stop_phase = patience > 0 && m_progress.stale_epochs >= patience;
    m_progress.epoch = epoch + 1;
    m_progress.step_in_epoch = 0;
    if (stop_phase && phase == 1 && m_progress.epoch < m_phase2_start) {
        log(fmt::format("no mAP@0.5 improvement for {} epochs: moving on to phase 2", patience));
        m_phase2_start = m_progress.epoch;
        m_progress.phase_cut = true;
        m_progress.stale_epochs = 0;
    } else if (stop_phase && phase == 2) {
        log(fmt::format("no mAP@0.5 improvement for {} epochs: stopping early", patience));
        m_progress.finished = true;
        m_progress.finish_reason = "early_stop";
    }
    if (m_progress.epoch >= m_phase2_start + tc.phase2.epochs && !m_progress.finished) {
        m_progress.finished = true;
        m_progress.finish_reason = "finished";
    }
    if (phase == 1 && phase_of(m_progress.epoch) == 2) m_progress.stale_epochs = 0;
    m_progress.order = epoch_order(m_data.train.size(), tc.seed, m_progress.epoch);
    checkpoint("epoch", false);
    report(protocol::EpochEnd{epoch, phase, m_progress.step, seconds, mem.peak, m_peak_device,
                              m_peak_device_reserved});
    release_memory(m_device, m_tier.cleanup);
}

int Trainer::run() {
    setup();
    resume();
    const std::int64_t total =
        std::int64_t{m_phase2_start + m_config.training.phase2.epochs} * m_steps_per_epoch;
    log(fmt::format(
        "training on {} ({} tier: micro-batch {} x {} accumulation = {} images/step, {} threads); "
        "{} train / {} valid images, {} steps per epoch",
        device_name(m_device), m_tier.name, m_tier.micro_batch, m_tier.accumulation,
        m_config.training.effective_batch, m_tier.threads, m_data.train.size(), m_data.valid.size(),
        m_steps_per_epoch));
    report(protocol::Hello{static_cast<std::int64_t>(::getpid()), m_tier.name,
                           device_name(m_device), m_tier.threads, m_tier.micro_batch,
                           m_tier.accumulation, m_resumed_step, total, m_progress.epoch,
                           phase_of(m_progress.epoch)});
    try {
        try {
            while (!m_progress.finished) {
                if (m_progress.step_in_epoch < m_steps_per_epoch) train_epoch();
                end_epoch();
            }
        } catch (const std::bad_alloc&) {
            // An allocation outside the forward/backward pass (a checkpoint's serialisation, the
            // next batch's images, a metrics line) failed: the completed steps are still saved.
            handle_oom("std::bad_alloc", false);
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

}  // namespace

int run_training(const TrainOptions& options) {
    install_stop_handlers();
    ignore_file_size_signal();
    auto channel = ReportChannel::open(options.report_fd, options.command_fd);
    auto report_error = [&](const char* kind, const std::string& message) {
        std::cerr << "error: " << message << std::endl;
        if (channel) channel->send(protocol::WorkerError{kind, message});
    };
    try {
        Config config = load_config(options.config_path);
        if (!options.pretrained.empty())
            config.model.pretrained = fs::absolute(options.pretrained).lexically_normal().string();
        if (options.pretrained_strict >= 0) config.model.pretrained_strict = options.pretrained_strict == 1;
        const TierConfig* tier = nullptr;
        if (!options.tier.empty()) {
            tier = config.find_tier(options.tier);
            if (!tier) {
                std::string names;
                for (const auto& t : config.tiers) names += (names.empty() ? "" : ", ") + t.name;
                report_error("config", fmt::format("{}: no tier named '{}' (tiers: {})",
                                                   options.config_path, options.tier, names));
                return exit_code::config_error;
            }
            if (!device_available(tier->device)) {
                const DeviceStatus& status =
                    tier->device == Device::cuda ? devices().cuda : devices().mps;
                report_error("config",
                             fmt::format("tier '{}' needs device {}, which cannot be used here: {}",
                                         tier->name, to_string(tier->device), status.why));
                return exit_code::config_error;
            }
        } else {
            for (const auto& t : config.tiers)
                if (device_available(t.device)) {
                    tier = &t;
                    break;
                }
            if (!tier) {
                report_error("config", "no tier's device is available on this machine");
                return exit_code::config_error;
            }
        }
        for (const auto& [k, v] : tier->env) ::setenv(k.c_str(), v.c_str(), /*overwrite=*/0);
        const std::string run_dir = options.run_dir.empty()
                                        ? run_dir::default_for(options.config_path)
                                        : options.run_dir;
        // Held for the whole run: a restarted supervisor waits on it for a worker of its
        // predecessor, and two workers never train into one run directory.
        make_directories(run_dir);
        FileLock::Failure lock_failure{};
        std::string lock_detail;
        auto worker_lock =
            FileLock::try_acquire(run_dir::worker_lock(run_dir), &lock_failure, &lock_detail);
        if (!worker_lock && lock_failure == FileLock::Failure::held) {
            report_error("config",
                         fmt::format("another worker is training in {}{}", run_dir,
                                     lock_detail.empty() ? "" : " (pid " + lock_detail + ")"));
            return exit_code::config_error;
        }
        if (!worker_lock) {
            report_error("io", lock_detail);
            return exit_code::io_error;
        }
        Trainer trainer(config, *tier, run_dir, channel.get());
        int code = trainer.run();
        if (channel) channel->flush(std::chrono::milliseconds(2000));
        return code;
    } catch (const ConfigError& e) {
        report_error("config", e.what());
        return exit_code::config_error;
    } catch (const data::DataError& e) {
        report_error("data", e.what());
        return exit_code::data_error;
    } catch (const IoError& e) {
        report_error("io", e.what());
        return exit_code::io_error;
    } catch (const CheckpointError& e) {
        report_error("io", e.what());
        return exit_code::io_error;
    } catch (const DivergedError& e) {
        report_error("training", e.what());
        return exit_code::diverged;
    } catch (const std::bad_alloc&) {
        report_error("internal", "out of memory outside a training step");
        return exit_code::oom;
    } catch (const std::exception& e) {
        const std::string what = e.what();
        if (is_out_of_memory(e)) {
            report_error("internal", "out of memory outside a training step: " +
                                         what.substr(0, what.find('\n')));
            return exit_code::oom;
        }
        report_error("internal", what);
        return exit_code::internal_error;
    }
}

}  // namespace smartcash::train
