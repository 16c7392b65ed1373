#include "worker/model/detector.hpp"

#include <algorithm>
#include <stdexcept>

#include "worker/model/conv.hpp"
#include "worker/model/csp.hpp"
#include "worker/model/cspdarknet.hpp"
#include "worker/model/efficientnet.hpp"

namespace smartcash::model {
namespace {

// The neck is YOLOv5s-sized whatever the backbone: 128/256/512 wide, one bottleneck per C3
// (3 x 0.33).
constexpr std::array<int64_t, 3> base_neck_channels{128, 256, 512};
constexpr int64_t base_neck_depth = 3;
constexpr double v5s_depth = 0.33;

std::shared_ptr<FeatureExtractor> make_backbone(const DetectorOptions& options) {
    switch (options.backbone) {
        case Backbone::efficientnet_b4: {
            EfficientNetOptions b4;
            b4.width = 1.4 * options.width_multiple;
            b4.depth = 1.8 * options.depth_multiple;
            b4.drop_connect = options.drop_connect;
            return std::make_shared<EfficientNetImpl>(b4);
        }
        case Backbone::cspdarknet: {
            CspDarknetOptions v5s;
            v5s.width = 0.5 * options.width_multiple;
            v5s.depth = v5s_depth * options.depth_multiple;
            return std::make_shared<CspDarknetImpl>(v5s);
        }
    }
    throw std::invalid_argument("unknown backbone");
}

std::vector<torch::Tensor> concat(std::vector<torch::Tensor> a,
                                  const std::vector<torch::Tensor>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

}  // namespace

const std::array<LayerSpec, 3>& detection_layers() {
    static const std::array<LayerSpec, 3> layers{{
        {"layer_1", 0, 7},
        {"layer_2", 7, 7},
        {"layer_3", 14, 3},
    }};
    return layers;
}

const std::vector<std::string>& class_names() {
    static const std::vector<std::string> names{
        "001",     "002",     "005",       "010",    "020",    "050",    "100",     // layer_1
        "l2_001",  "l2_002",  "l2_005",    "l2_010", "l2_020", "l2_050", "l2_100",  // layer_2
        "l3_sign", "l3_text", "l3_thread",                                          // layer_3
    };
    return names;
}

torch::Tensor default_anchors() {
    return torch::tensor({10.f, 13.f, 16.f, 30.f, 33.f, 23.f,        // P3 / 8
                          30.f, 61.f, 62.f, 45.f, 59.f, 119.f,       // P4 / 16
                          116.f, 90.f, 156.f, 198.f, 373.f, 326.f})  // P5 / 32
        .view({num_scales, anchors_per_scale, 2});
}

const char* to_string(InputNormalization normalization) {
    switch (normalization) {
        case InputNormalization::none:
            return "none";
        case InputNormalization::imagenet:
            return "imagenet";
    }
    return "none";
}

InputNormalization input_normalization_from(const std::string& name) {
    if (name == "none") return InputNormalization::none;
    if (name == "imagenet") return InputNormalization::imagenet;
    throw std::invalid_argument("unknown input normalization '" + name +
                                "' (expected none or imagenet)");
}

DetectorOptions options_from(const ModelConfig& config) {
    DetectorOptions options;
    options.backbone = config.backbone;
    options.width_multiple = config.width_multiple;
    options.depth_multiple = config.depth_multiple;
    options.drop_connect = config.drop_connect;
    options.bn_momentum = config.bn_momentum;
    return options;
}

std::array<int64_t, 3> neck_channels(double width_multiple) {
    std::array<int64_t, 3> channels{};
    for (size_t i = 0; i < channels.size(); ++i) {
        channels[i] =
            round_channels_up(static_cast<double>(base_neck_channels[i]) * width_multiple);
    }
    return channels;
}

DetectorImpl::DetectorImpl(const DetectorOptions& options) : m_options(options) {
    if (!(options.width_multiple > 0.0) || !(options.depth_multiple > 0.0)) {
        throw std::invalid_argument("detector width_multiple and depth_multiple must be > 0");
    }
    m_backbone = register_module("backbone", make_backbone(options));
    const auto channels = neck_channels(options.width_multiple);
    m_adapters = register_module("adapters", Adapters(m_backbone->out_channels(), channels));
    m_neck = register_module(
        "neck", FpnPan(channels, csp_depth(base_neck_depth, v5s_depth * options.depth_multiple)));
    for (const auto& layer : detection_layers()) {
        m_heads.push_back(
            register_module(std::string("head_") + layer.name,
                            YoloHead(channels, layer.num_classes, anchors_per_scale, strides)));
    }
    m_anchors = register_buffer("anchors", default_anchors());
    if (options.bn_momentum > 0) {
        for (auto& module : modules(/*include_self=*/false)) {
            if (auto* bn = module->as<torch::nn::BatchNorm2dImpl>())
                bn->options.momentum(options.bn_momentum);
        }
    }
}

std::vector<std::vector<torch::Tensor>> DetectorImpl::forward(const torch::Tensor& images) {
    const auto features = m_neck(m_adapters(m_backbone->forward(normalize(images))));
    std::vector<std::vector<torch::Tensor>> outputs;
    outputs.reserve(m_heads.size());
    for (auto& head : m_heads) {
        outputs.push_back(head(features));
    }
    return outputs;
}

std::vector<torch::Tensor> DetectorImpl::backbone_parameters() { return m_backbone->parameters(); }

std::vector<torch::Tensor> DetectorImpl::adapter_parameters() { return m_adapters->parameters(); }

std::vector<torch::Tensor> DetectorImpl::fpn_pan_parameters() { return m_neck->parameters(); }

std::vector<torch::Tensor> DetectorImpl::neck_parameters() {
    return concat(adapter_parameters(), fpn_pan_parameters());
}

std::vector<torch::Tensor> DetectorImpl::head_parameters() {
    std::vector<torch::Tensor> params;
    for (auto& head : m_heads) {
        params = concat(std::move(params), head->parameters());
    }
    return params;
}

torch::nn::Module& DetectorImpl::backbone_module() { return *m_backbone; }

FeatureExtractor& DetectorImpl::backbone() { return *m_backbone; }

torch::Tensor DetectorImpl::normalize(const torch::Tensor& images) const {
    if (m_normalization == InputNormalization::none) return images;
    // Built on the CPU in float32 and moved: MPS has no float64.
    auto channel_vector = [&](const std::array<double, 3>& v) {
        return torch::tensor(
                   {static_cast<float>(v[0]), static_cast<float>(v[1]), static_cast<float>(v[2])})
            .to(images.device(), images.scalar_type())
            .view({1, 3, 1, 1});
    };
    const auto mean = channel_vector(imagenet_mean);
    const auto stddev = channel_vector(imagenet_std);
    return (images - mean) / stddev;
}

std::array<int64_t, 3> DetectorImpl::backbone_channels() const {
    return m_backbone->out_channels();
}

void DetectorImpl::set_backbone_frozen(bool frozen) {
    m_backbone_frozen = frozen;
    for (auto& p : m_backbone->parameters()) {
        p.requires_grad_(!frozen);
    }
    m_backbone->train(!frozen && is_training());
}

void DetectorImpl::train(bool on) {
    torch::nn::Module::train(on);
    if (m_backbone_frozen) {
        m_backbone->eval();
    }
}

void DetectorImpl::set_activation_checkpointing(bool on) {
    m_checkpointing = on;
    m_backbone->set_activation_checkpointing(on);
    m_neck->set_activation_checkpointing(on);
}

}  // namespace smartcash::model
