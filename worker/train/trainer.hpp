// The training loop of one worker launch: set-up and resume, the epochs of two phases, a step at
// a time, the epoch's end, and the fault contract's exits (a requested stop, an in-process OOM).
// Its parts live in one file each:
//   trainer.cpp          set-up, resume, the loop, progress reports and metrics lines
//   trainer_step.cpp     one optimizer step of the loop: its batch, its snapshot, its outcome
//   trainer_epoch.cpp    the epoch's end: validation, early stopping, summary, epoch checkpoint
//   trainer_exits.cpp    checkpoints, and the ends of a launch: requested stop, out of memory
// The step's math is train_step() (train_step.hpp); early stopping is close_epoch()
// (early_stopping.hpp). The command that builds a Trainer is worker/commands/train_command.cpp.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "common/metrics_records.hpp"
#include "common/reports.hpp"
#include "worker/channel/report_channel.hpp"
#include "worker/checkpoint/checkpoint.hpp"
#include "worker/data/dataset.hpp"
#include "worker/device/device.hpp"
#include "worker/distributed/process_group.hpp"
#include "worker/model/detector.hpp"
#include "worker/train/fault_hooks.hpp"
#include "worker/train/faults.hpp"
#include "worker/train/loss.hpp"
#include "worker/train/sample_prefetcher.hpp"
#include "worker/train/train_step.hpp"
#include "worker/ui/progress.hpp"

namespace smartcash::train {

class Trainer {
  public:
    /// `dist`: this process's rank among the ranks of a data-parallel job (the default: one
    /// process, no process group).
    Trainer(Config config, const TierConfig& tier, std::string run_dir, ReportChannel* channel,
            dist::DistEnv dist = {});

    /// Trains to the end or to a stop; returns the worker's exit code. Errors that are not part
    /// of the fault contract (config, data, I/O, divergence) are thrown.
    int run();

  private:
    using Clock = std::chrono::steady_clock;

    // trainer.cpp
    void setup();
    void resume();
    void apply_phase();
    void train_epoch();
    bool between_micro();
    /// Reads the supervisor's commands (a stop, a checkpoint request).
    void poll_commands();
    /// At a step boundary: false when the run must stop before the next step. With ranks, every
    /// rank contributes its wishes (stop, checkpoint) and all take the same decision.
    bool agree_at_step_boundary();
    /// The newest checkpoint of this run directory; with ranks, the newest step every rank has.
    std::optional<LoadedCheckpoint> load_resume_checkpoint(std::vector<std::string>* problems);
    void send_progress(bool force);
    void append_metrics(const protocol::MetricsRecord& record);
    void report(protocol::WorkerReport message) {
        if (m_channel) m_channel->send(std::move(message));
    }
    void log(const std::string& line);
    int phase_of(int epoch) const { return epoch < m_phase2_start ? 1 : 2; }
    std::int64_t total_steps() const;
    std::int64_t phase_steps(int phase) const;
    std::int64_t step_in_phase() const;
    DeviceMemory note_device_memory();

    // trainer_step.cpp
    void run_one_step();
    /// The images of step `step_in_epoch` of the current epoch, in its seeded order.
    std::vector<data::Sample> load_step_samples(std::int64_t step_in_epoch) const;
    /// This step's images: decoded ahead by prefetch_next_step(), or now.
    std::vector<data::Sample> take_step_samples();
    /// Starts decoding the next step's images on a thread (within the epoch only: the next
    /// epoch's order is drawn at its end). The samples depend only on their seeds, so decoding
    /// ahead changes nothing in the run.
    void prefetch_next_step();
    /// A complete copy of the model's buffers (BatchNorm statistics) as the step begins.
    std::vector<torch::Tensor> snapshot_buffers();
    void restore_step_start_buffers();

    // trainer_epoch.cpp
    void end_epoch();

    // trainer_exits.cpp
    void checkpoint(const std::string& kind, bool mid_step);
    [[noreturn]] void stop_now();
    [[noreturn]] void handle_oom(const std::string& message, bool in_optimizer_step);
    /// A collective failed in the loop (dist::DistributedError): another rank is gone.
    [[noreturn]] void handle_peer_lost(const std::string& message);

    Config m_config;
    TierConfig m_tier;
    std::string m_run_dir;
    ReportChannel* m_channel;
    dist::DistEnv m_dist;
    std::unique_ptr<dist::ProcessGroupContext> m_group;  ///< null: one process
    torch::Device m_device;
    ui::ProgressBar m_bar;
    FaultHooks m_hooks;

    data::Dataset m_data;
    std::string m_dataset_path;  ///< as opened (the generated folder for "synthetic")
    data::DatasetIdentity m_dataset_identity;
    model::Detector m_model{nullptr};
    std::unique_ptr<torch::optim::AdamW> m_optimizer;
    std::unique_ptr<YoloLoss> m_loss;
    std::unique_ptr<YoloLoss> m_poisoned_loss;  ///< for FaultHooks::poisons_loss steps
    std::unique_ptr<CheckpointStore> m_store;
    TrainProgress m_progress;
    std::int64_t m_steps_per_epoch = 0;
    int m_phase2_start = 0;  ///< epoch at which phase 2 begins
    std::int64_t m_resumed_step = 0;
    Json m_pretrained;  ///< the weights file this run started from (null: random)
    std::int64_t m_last_saved_step = -1;
    std::string m_last_saved_path;  ///< the store's path of that checkpoint
    std::vector<torch::Tensor> m_step_start_buffers;
    /// Declared after everything its jobs read, so it is destroyed (its thread joined) first.
    std::unique_ptr<SamplePrefetcher> m_prefetcher;
    EmergencyReserve m_reserve;
    std::int64_t m_updates_at_step_start = 0;  ///< optimizer_updates() when the step began
    bool m_pending_checkpoint = false;         ///< the supervisor asked for a checkpoint
    /// With ranks: this rank was asked for a checkpoint, not yet agreed with the others.
    bool m_checkpoint_wanted = false;

    // Live figures for reports.
    StepResult m_last_step;
    double m_lr = 0;
    double m_images_per_s = 0;
    Clock::time_point m_last_progress{};
    Clock::time_point m_epoch_started{};
    std::uint64_t m_peak_device = 0;           ///< allocated on the device
    std::uint64_t m_peak_device_reserved = 0;  ///< held from the driver
};

}  // namespace smartcash::train
