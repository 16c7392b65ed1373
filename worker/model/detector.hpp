// The SmartCash detector: backbone -> 1x1 adapters -> FPN/PAN neck -> one YOLO head per
// detection layer.
#pragma once

#include <torch/torch.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "common/config.hpp"
#include "worker/model/adapters.hpp"
#include "worker/model/feature_extractor.hpp"
#include "worker/model/fpn_pan.hpp"
#include "worker/model/parameter_count.hpp"
#include "worker/model/yolo_head.hpp"

namespace smartcash::model {

inline constexpr int num_scales = 3;  ///< strides 8, 16, 32
inline constexpr int anchors_per_scale = 3;
inline constexpr std::array<int, 3> strides = {8, 16, 32};

/// A detection layer: a named, contiguous range of the global class indices.
struct LayerSpec {
    const char* name;
    int first_class;
    int num_classes;
};

/// The three detection layers: layer_1 banknote denominations (classes 0-6), layer_2 denomination
/// features (7-13), layer_3 security features (14-16).
const std::array<LayerSpec, 3>& detection_layers();

/// The 17 class names in global class order.
const std::vector<std::string>& class_names();

/// The YOLOv5 P3/P4/P5 anchors as [3 scales, 3 anchors, 2 (w, h)] in input pixels.
torch::Tensor default_anchors();

struct DetectorOptions {
    Backbone backbone = Backbone::efficientnet_b4;
    /// Multiplies every channel width (backbone coefficients included); < 1 for test variants.
    double width_multiple = 1.0;
    /// Multiplies every block count (backbone coefficients included); < 1 for test variants.
    double depth_multiple = 1.0;
    /// Stochastic-depth rate at the last EfficientNet block.
    double drop_connect = 0.2;
    double bn_momentum = 0.0;  ///< > 0: overrides every BatchNorm's momentum
};

/// What the detector does to its input (images scaled to [0, 1]) before the backbone.
enum class InputNormalization {
    none,      ///< used as is (a backbone trained from scratch here, YOLOv5 weights)
    imagenet,  ///< (x - mean) / std with ImageNet's per-channel mean and std (torchvision, timm)
};

const char* to_string(InputNormalization normalization);
/// The normalization named by to_string(); throws std::invalid_argument for anything else.
InputNormalization input_normalization_from(const std::string& name);

/// ImageNet's per-channel mean and standard deviation (RGB), as torchvision and timm use them.
inline constexpr std::array<double, 3> imagenet_mean{0.485, 0.456, 0.406};
inline constexpr std::array<double, 3> imagenet_std{0.229, 0.224, 0.225};

/// The detector options a model config asks for.
DetectorOptions options_from(const ModelConfig& config);

/// The neck widths (P3, P4, P5) at a width multiple: 128/256/512 scaled, multiples of 8, >= 8.
std::array<int64_t, 3> neck_channels(double width_multiple);

class DetectorImpl : public torch::nn::Module {
  public:
    explicit DetectorImpl(const DetectorOptions& options);

    /// For each detection layer (3), for each scale (3): raw logits
    /// [B, 3, H/s, W/s, 5 + nc_layer] laid out (tx, ty, tw, th, obj, cls...).
    /// `images` is [B, 3, H, W] in [0, 1] with H and W multiples of 32; input_normalization()
    /// is applied first.
    std::vector<std::vector<torch::Tensor>> forward(const torch::Tensor& images);

    /// Stem and stages of the backbone.
    std::vector<torch::Tensor> backbone_parameters();
    /// The 1x1 adapters and the FPN/PAN neck.
    std::vector<torch::Tensor> neck_parameters();
    /// The three YOLO heads.
    std::vector<torch::Tensor> head_parameters();
    /// The 1x1 adapters only (part of neck_parameters()).
    std::vector<torch::Tensor> adapter_parameters();
    /// The FPN/PAN only (part of neck_parameters()).
    std::vector<torch::Tensor> fpn_pan_parameters();

    /// The backbone (stem and stages), e.g. to put it in eval() while it is frozen.
    torch::nn::Module& backbone_module();
    /// The backbone as a feature extractor: P3/P4/P5 of an already normalized input.
    FeatureExtractor& backbone();

    /// The input normalization forward() applies. Not a tensor of the model: the checkpoint
    /// records it beside the weights. Defaults to none.
    void set_input_normalization(InputNormalization normalization) {
        m_normalization = normalization;
    }
    InputNormalization input_normalization() const { return m_normalization; }
    /// `images` in [0, 1] as the backbone expects them under input_normalization().
    torch::Tensor normalize(const torch::Tensor& images) const;
    /// The backbone's P3/P4/P5 channels before the adapters.
    std::array<int64_t, 3> backbone_channels() const;

    /// Phase 1 helper: freezing stops gradients into the backbone (requires_grad false) and keeps
    /// it in eval mode, also across later train() calls, so its batch-norm statistics stay put.
    /// Unfreezing undoes both.
    void set_backbone_frozen(bool frozen);
    bool backbone_frozen() const { return m_backbone_frozen; }

    /// Train/eval for the whole model, except that a frozen backbone stays in eval.
    void train(bool on = true) override;

    /// Recompute backbone stages and neck blocks in backward to save activation memory.
    void set_activation_checkpointing(bool on);
    bool activation_checkpointing() const { return m_checkpointing; }

    /// The backbone's activations in channels-last memory format (FeatureExtractor); the trainer
    /// turns it on for the CPU, where it is faster.
    void set_channels_last(bool on) { m_backbone->set_channels_last(on); }
    bool channels_last() const { return m_backbone->channels_last(); }

    /// The anchors buffer [3, 3, 2] (w, h) in input pixels.
    torch::Tensor anchors() const { return m_anchors; }

    const DetectorOptions& options() const { return m_options; }

  private:
    DetectorOptions m_options;
    std::shared_ptr<FeatureExtractor> m_backbone;
    Adapters m_adapters{nullptr};
    FpnPan m_neck{nullptr};
    std::vector<YoloHead> m_heads;
    torch::Tensor m_anchors;
    bool m_backbone_frozen = false;
    bool m_checkpointing = false;
    InputNormalization m_normalization = InputNormalization::none;
};
TORCH_MODULE(Detector);

}  // namespace smartcash::model
