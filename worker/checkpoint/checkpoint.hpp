// Checkpoints that resume exactly: model parameters and buffers, optimizer state, RNG state and
// the training position, saved device-neutral (CPU tensors) and guarded by a SHA-256 manifest.
//
// Layout in RUN_DIR/checkpoints/:
//   step-00000120.pt   the checkpoint (a LibTorch archive)
//   step-00000120.json its manifest: sha256 and size of the .pt, step, epoch, phase, kind
//   latest.json        the manifest of the newest checkpoint written
//   best.pt/best.json  a copy of the checkpoint with the best validation mAP@0.5
// Files are written atomically, the .pt before its manifest, so a checkpoint without a manifest
// is an interrupted write and is ignored.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "worker/data/dataset.hpp"
#include "worker/model/detector.hpp"

namespace smartcash::train {

using Json = nlohmann::json;

inline constexpr int checkpoint_format_version = 1;

/// Where training stands. Everything here goes into the checkpoint's metadata.
struct TrainProgress {
    int epoch = 0;                    ///< current epoch, 0-based over both phases
    std::int64_t step = 0;            ///< optimizer steps completed over the whole run
    std::int64_t step_in_epoch = 0;   ///< optimizer steps completed in the current epoch
    std::vector<std::int64_t> order;  ///< data order of the current epoch
    double best_map50 = -1.0;
    int best_epoch = -1;
    int stale_epochs = 0;            ///< epochs since the last mAP@0.5 improvement (this phase)
    bool phase_cut = false;          ///< phase 1 ended early by early stopping
    std::int64_t skipped_steps = 0;  ///< steps skipped for a non-finite loss or gradient norm
    int nonfinite_streak = 0;        ///< of those, how many in a row up to `step`
    bool finished = false;
    std::string finish_reason;
    Json metrics = Json::array();  ///< per-epoch metric history
    Json tiers = Json::array();    ///< tier history: {tier, device, micro_batch, from_step}
};

Json to_json(const TrainProgress& p);
TrainProgress progress_from_json(const Json& j);

/// What a checkpoint says about itself, besides the tensors.
struct CheckpointMeta {
    int format_version = checkpoint_format_version;
    std::string kind;  ///< step, epoch, emergency, stop, requested
    int phase = 1;
    TrainProgress progress;
    std::string tier;
    std::string device;
    int micro_batch = 0;
    int effective_batch = 0;
    /// Ranks of the data-parallel run that wrote it (each rank writes its own, complete
    /// checkpoint); 1 for one process and for checkpoints of older workers.
    int world_size = 1;
    /// resume_fingerprint(): the config's resume-critical keys and the dataset identity
    std::string fingerprint;
    std::optional<data::DatasetIdentity> dataset;  ///< absent in checkpoints of older workers
    std::string config_yaml;                       ///< the resolved config of the run
    std::vector<std::string> tensor_names;         ///< model tensors in their fixed hashing order
    std::vector<std::string> optimizer_entries;    ///< "G/I" of each parameter with optimizer state
    /// What the model does to its input ("none", "imagenet"); serialize_checkpoint() takes it
    /// from the model, restore_checkpoint() gives it back (older checkpoints: none).
    std::string input_normalization = "none";
    /// The weights file a fresh run started from (model::to_json(PretrainedPlan): file, sha256,
    /// naming, ...), carried by every later checkpoint of the run; null: random weights.
    Json pretrained;
};

Json to_json(const CheckpointMeta& m);

/// SHA-256 over the config's resume fingerprint and the dataset identity: equal when a resume
/// continues the same optimisation on the same data.
std::string resume_fingerprint(const Config& config, const data::DatasetIdentity& dataset);

/// The model tensors (parameters then buffers) in a fixed order, with their names.
std::vector<std::pair<std::string, torch::Tensor>> model_tensors(model::DetectorImpl& model);

/// SHA-256 over names, dtypes, shapes and bytes of tensors (equal weights -> equal hash).
std::string hash_tensors(const std::vector<std::pair<std::string, torch::Tensor>>& tensors);

/// A checkpoint read back from disk.
struct LoadedCheckpoint {
    std::string path;
    CheckpointMeta meta;
    Json meta_json;
    std::vector<std::pair<std::string, torch::Tensor>> model;  ///< CPU tensors in saved order
    std::vector<std::pair<std::string, torch::Tensor>> optimizer;
    torch::Tensor rng_state;
};

/// Reads and verifies a checkpoint file: against its manifest (when `require_manifest` or one
/// exists) and by parsing it. Throws CheckpointError saying what is wrong.
LoadedCheckpoint read_checkpoint(const std::string& path, bool require_manifest);

class CheckpointError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// Serialises the state into checkpoint bytes (CPU tensors). `buffers_override`, when given,
/// replaces the model's buffers (the snapshot taken at the start of the current optimizer step,
/// so a checkpoint taken mid-step holds exactly the state after the last completed step).
std::string serialize_checkpoint(model::DetectorImpl& model, torch::optim::AdamW& optimizer,
                                 CheckpointMeta meta,
                                 const std::vector<torch::Tensor>* buffers_override);

/// Copies a loaded checkpoint into the model and optimizer on `device`, and restores the RNG.
void restore_checkpoint(const LoadedCheckpoint& ckpt, model::DetectorImpl& model,
                        torch::optim::AdamW& optimizer, const torch::Device& device);

/// The checkpoint directory of a run: writing, pruning, finding the newest good one.
class CheckpointStore {
  public:
    CheckpointStore(std::string dir, int keep);

    struct Saved {
        std::string path;
        std::string sha256;
        std::int64_t step = 0;
    };

    /// Writes bytes as the checkpoint of `meta.progress.step`, then its manifest, latest.json,
    /// and prunes old step checkpoints beyond `keep`. Throws IoError (the previous checkpoint is
    /// left intact). Pruning keeps the checkpoint just written (the newest good one) and the
    /// `keep` - 1 next older ones; files that load_newest_good() rejected neither count nor are
    /// deleted (a rejected file at a higher step is replaced when the run writes that step again).
    Saved save(const std::string& bytes, const CheckpointMeta& meta);

    /// Stores the same bytes as best.pt (+ best.json).
    void save_best(const std::string& bytes, const CheckpointMeta& meta);

    /// The newest checkpoint that verifies, trying older ones when the newest is bad; each bad
    /// one adds a line to `problems` and is remembered as rejected. nullopt when there is none.
    /// `max_step`: only checkpoints of that step or older are considered (newer ones are left
    /// alone).
    std::optional<LoadedCheckpoint> load_newest_good(
        std::vector<std::string>* problems,
        std::int64_t max_step = std::numeric_limits<std::int64_t>::max());

    /// Deletes the temp files of writes that a kill interrupted; returns their names.
    std::vector<std::string> remove_interrupted_writes() const;

    const std::string& dir() const { return m_dir; }

  private:
    Json manifest_for(const std::string& file, const std::string& bytes,
                      const CheckpointMeta& meta) const;
    void prune(const std::string& written) const;

    std::string m_dir;
    int m_keep;
    std::set<std::string> m_rejected;  ///< paths load_newest_good() found bad
};

}  // namespace smartcash::train
