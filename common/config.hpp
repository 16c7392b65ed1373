// The job configuration: one YAML file, loaded into these typed structs.
//
// The schema is documented in docs/config.md. Every loading error names the file,
// line, column and key path; unknown keys are errors. Nothing in here depends on LibTorch, so the
// supervisor and the worker share it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace smartcash {

/// A user-caused configuration problem, located in a file.
class ConfigError : public std::runtime_error {
  public:
    ConfigError(std::string file, int line, int column, std::string key_path, std::string what);
    const std::string& file() const { return m_file; }
    int line() const { return m_line; }                         ///< 1-based; 0 when unknown
    int column() const { return m_column; }                     ///< 1-based; 0 when unknown
    const std::string& key_path() const { return m_key_path; }  ///< e.g. "tiers[1].micro_batch"

  private:
    std::string m_file;
    int m_line;
    int m_column;
    std::string m_key_path;
};

enum class Backbone { efficientnet_b4, cspdarknet };
enum class Device { auto_, cpu, cuda, mps };
enum class BadLabelPolicy { fail, skip };
enum class Cleanup { normal, aggressive, extreme };

struct ModelConfig {
    Backbone backbone = Backbone::efficientnet_b4;
    double width_multiple = 1.0;  ///< scales backbone, adapter, neck and head channel widths
    double depth_multiple = 1.0;  ///< scales the number of blocks per stage
    int img_size = 640;           ///< square network input, multiple of 32
    double drop_connect = 0.2;    ///< stochastic-depth rate at the last block (efficientnet)
    /// BatchNorm momentum for every layer; 0 keeps each part's reference value (EfficientNet-B4
    /// 0.1, CSP backbone and neck 0.03).
    double bn_momentum = 0.0;
    /// Weights a fresh run starts from (safetensors or torch.save; see docs/config.md); empty:
    /// random. Relative to the config file, stored absolute. Never reloaded over a checkpoint.
    std::string pretrained;
    /// Missing, unexpected or wrong-shape tensors in `pretrained` are an error (false: listed,
    /// and what fits is loaded).
    bool pretrained_strict = true;
};

struct AugmentConfig {
    double flip = 0.5;        ///< horizontal flip probability
    double hsv_h = 0.015;     ///< hue gain (fraction)
    double hsv_s = 0.5;       ///< saturation gain
    double hsv_v = 0.3;       ///< value gain
    double degrees = 3.0;     ///< max rotation
    double translate = 0.05;  ///< max translation (fraction of size)
    double scale = 0.1;       ///< max scale change (fraction)
};

struct SyntheticConfig {
    int images = 240;  ///< total, split 80/10/10 into train/valid/test
    int size = 320;    ///< generated image side in pixels
    std::uint64_t seed = 7;
};

/// The value of data.dataset that names the embedded synthetic dataset (generated into
/// RUN_DIR/data) instead of a path.
inline constexpr const char* synthetic_dataset = "synthetic";

struct DataConfig {
    /// "synthetic" (generate into RUN_DIR/data) or a path to data.yaml / a dataset directory,
    /// relative to the config file.
    std::string dataset = synthetic_dataset;
    SyntheticConfig synthetic;
    BadLabelPolicy bad_labels = BadLabelPolicy::fail;
    AugmentConfig augment;
    int cache_images = 0;  ///< decoded images kept in memory (0: none)
};

struct GroupLr {
    double backbone = 0.0;
    double neck = 0.0;
    double head = 0.0;
};

struct PhaseConfig {
    int epochs = 0;
    GroupLr lr;
};

struct LossConfig {
    double box = 0.05;
    double obj = 1.0;
    double cls = 0.5;
    std::vector<double> obj_balance = {4.0, 1.0, 0.4};  ///< per scale P3, P4, P5
    std::map<std::string, double> layer_weights = {
        {"layer_1", 1.0}, {"layer_2", 0.5}, {"layer_3", 0.5}};
    double anchor_threshold = 4.0;  ///< max wh ratio target/anchor to assign
};

struct EvalConfig {
    double conf_threshold = 0.001;
    double nms_iou = 0.6;
    int max_detections = 300;
    int every_epochs = 1;
};

struct EarlyStopConfig {
    int patience = 10;  ///< epochs without mAP@0.5 improvement (0: off)
    double min_delta = 0.001;
};

struct TrainingConfig {
    int effective_batch = 16;  ///< images per optimizer step; fixed for the whole job
    PhaseConfig phase1{2, {0.0, 1e-3, 1e-3}};
    PhaseConfig phase2{2, {1e-4, 5e-4, 5e-4}};
    double weight_decay = 5e-4;
    double warmup_steps = 20;    ///< optimizer steps of linear warmup at the start of each phase
    double min_lr_ratio = 0.05;  ///< cosine floor as a fraction of the phase lr
    double grad_clip = 10.0;     ///< max global L2 norm (0: off)
    double beta1 = 0.9;
    double beta2 = 0.999;
    LossConfig loss;
    EvalConfig eval;
    EarlyStopConfig early_stopping;
    int checkpoint_every_steps = 50;  ///< optimizer steps between checkpoints (0: epoch ends only)
    int keep_checkpoints = 3;         ///< step checkpoints kept besides "best"
    /// Optimizer steps in a row with a non-finite loss or gradient norm (each skipped) after
    /// which the run ends as diverged.
    int max_nonfinite_steps = 5;
    std::uint64_t seed = 42;
    bool deterministic = true;
};

struct TierConfig {
    std::string name;
    Device device = Device::cpu;
    int micro_batch = 1;
    int threads = 1;
    std::uint64_t memory_limit = 0;  ///< bytes; 0: no limit
    /// Bytes the device's allocator may hold (CUDA memory fraction, MPS high watermark), so an
    /// accelerator tier fails with a device OOM instead of taking the machine; 0: no cap.
    std::uint64_t device_memory_limit = 0;
    bool activation_checkpointing = false;
    Cleanup cleanup = Cleanup::normal;
    std::map<std::string, std::string> env;
    int accumulation = 1;  ///< derived: training.effective_batch / micro_batch
};

struct PromotionConfig {
    bool enabled = true;
    double stable_seconds = 1800;  ///< time at a lower tier before trying the next one up
    double headroom = 0.5;  ///< peak use must stay below this fraction of the upper tier's limit
    double max_wait_seconds = 6 * 3600;  ///< cap of the doubling wait after failed promotions
};

struct SupervisorConfig {
    double poll_interval_seconds = 0.25;
    double soft_limit_fraction = 0.85;           ///< of the tier's memory_limit
    std::uint64_t min_available = 256ull << 20;  ///< system MemAvailable floor (bytes)
    double pressure_threshold = 40.0;            ///< PSI some avg10 (%) counted as pressure
    double pressure_seconds = 10;                ///< sustained this long -> soft limit
    double heartbeat_timeout_seconds = 300;
    double stop_grace_seconds = 30;  ///< SIGTERM -> SIGKILL
    double backoff_floor_seconds = 1;
    double backoff_cap_seconds = 60;
    int retry_budget = 5;  ///< consecutive launches without progress before giving up
    PromotionConfig promotion;
    /// Where to serve GET /metrics over HTTP ("": off; "PORT": 127.0.0.1; listen_address.hpp).
    std::string metrics_listen;
};

struct Config {
    std::string source_path;  ///< the file this was loaded from (absolute)
    ModelConfig model;
    DataConfig data;
    TrainingConfig training;
    std::vector<TierConfig> tiers;
    SupervisorConfig supervisor;

    /// The tier with this name, or nullptr.
    const TierConfig* find_tier(const std::string& name) const;
};

/// Loads and validates a config file. Throws ConfigError (file, line, column, key path).
Config load_config(const std::string& path);

/// Parses config text; `name` is used in error messages.
Config parse_config(const std::string& text, const std::string& name);

/// Renders a config back to YAML (every key, resolved values); parse_config() accepts the result.
std::string dump_config(const Config& config);

/// Stable digest of the parts that must not change under a resume: model and effective batch
/// (and anything else that changes what is being optimised). Hex SHA-256.
std::string resume_fingerprint(const Config& config);

/// Compares the resume-relevant parts of two configs; returns the key paths that differ.
std::vector<std::string> resume_incompatibilities(const Config& saved, const Config& current);

const char* to_string(Backbone b);
const char* to_string(Device d);
const char* to_string(BadLabelPolicy p);
const char* to_string(Cleanup c);

}  // namespace smartcash
