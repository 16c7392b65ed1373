#include "worker/model/pretrained_names.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>

namespace smartcash::model {
namespace {

const std::string backbone_prefix = "backbone.";

std::vector<std::string> split(const std::string& name) {
    std::vector<std::string> parts;
    std::string part;
    std::istringstream in(name);
    while (std::getline(in, part, '.')) parts.push_back(part);
    return parts;
}

std::string join(const std::vector<std::string>& parts, size_t from) {
    std::string out;
    for (size_t i = from; i < parts.size(); ++i) out += (out.empty() ? "" : ".") + parts[i];
    return out;
}

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

bool is_number(const std::string& part) {
    return !part.empty() &&
           std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// EfficientNet: our "stem.{conv.weight|bn.X}", "stageS.B.{expand|depthwise|project}.{conv|bn}.X",
// "stageS.B.se.{reduce|expand}.X".
std::string efficientnet_torchvision(const std::vector<std::string>& p, bool has_expand) {
    if (p.size() >= 3 && p[0] == "stem") {
        if (p[1] == "conv") return "features.0.0." + join(p, 2);
        if (p[1] == "bn") return "features.0.1." + join(p, 2);
        return {};
    }
    const int s = stage_number(p.at(0));
    if (s == 0 || p.size() < 5 || !is_number(p[1])) return {};
    const std::string block = fmt::format("features.{}.{}.block.", s, p[1]);
    const int shift = has_expand ? 1 : 0;
    const std::string& part = p[2];
    if (part == "se") {
        const std::string fc = p[3] == "reduce" ? "fc1" : p[3] == "expand" ? "fc2" : "";
        if (fc.empty()) return {};
        return block + fmt::format("{}.{}.", 1 + shift, fc) + join(p, 4);
    }
    int index = -1;
    if (part == "expand" && has_expand) index = 0;
    if (part == "depthwise") index = shift;
    if (part == "project") index = 2 + shift;
    if (index < 0) return {};
    if (p[3] == "conv") return block + fmt::format("{}.0.", index) + join(p, 4);
    if (p[3] == "bn") return block + fmt::format("{}.1.", index) + join(p, 4);
    return {};
}

std::string efficientnet_timm(const std::vector<std::string>& p, bool has_expand) {
    if (p.size() >= 3 && p[0] == "stem") {
        if (p[1] == "conv") return "conv_stem." + join(p, 2);
        if (p[1] == "bn") return "bn1." + join(p, 2);
        return {};
    }
    const int s = stage_number(p.at(0));
    if (s == 0 || p.size() < 5 || !is_number(p[1])) return {};
    const std::string block = fmt::format("blocks.{}.{}.", s - 1, p[1]);
    const std::string& part = p[2];
    if (part == "se") {
        const std::string conv = p[3] == "reduce"   ? "conv_reduce"
                                 : p[3] == "expand" ? "conv_expand"
                                                    : "";
        if (conv.empty()) return {};
        return block + "se." + conv + "." + join(p, 4);
    }
    // timm's blocks: InvertedResidual (conv_pw/bn1, conv_dw/bn2, conv_pwl/bn3) and, without an
    // expansion, DepthwiseSeparableConv (conv_dw/bn1, conv_pw/bn2).
    std::string conv, bn;
    if (part == "expand" && has_expand) conv = "conv_pw", bn = "bn1";
    if (part == "depthwise") conv = "conv_dw", bn = has_expand ? "bn2" : "bn1";
    if (part == "project")
        conv = has_expand ? "conv_pwl" : "conv_pw", bn = has_expand ? "bn3" : "bn2";
    if (conv.empty()) return {};
    if (p[3] == "conv") return block + conv + "." + join(p, 4);
    if (p[3] == "bn") return block + bn + "." + join(p, 4);
    return {};
}

// CSPDarknet: our "stem.X", "stageS.0.X" (the stride-2 conv), "stageS.1.X" (C3, bottlenecks.N
// for YOLOv5's m.N), "stage4.2.X" (SPPF) -> YOLOv5's model.0 .. model.9.
std::string cspdarknet_yolov5(const std::vector<std::string>& p) {
    if (p.size() >= 2 && p[0] == "stem") return "model.0." + join(p, 1);
    const int s = stage_number(p.at(0));
    if (s == 0 || p.size() < 3 || !is_number(p[1])) return {};
    const int layer = 2 * s - 1 + std::stoi(p[1]);
    std::vector<std::string> rest(p.begin() + 2, p.end());
    if (!rest.empty() && rest[0] == "bottlenecks") rest[0] = "m";
    return fmt::format("model.{}.", layer) + join(rest, 0);
}

}  // namespace

std::vector<std::string> split_name(const std::string& name) { return split(name); }

int stage_number(const std::string& part) {
    if (!starts_with(part, "stage") || part.size() == 5) return 0;
    for (size_t i = 5; i < part.size(); ++i)
        if (part[i] < '0' || part[i] > '9') return 0;
    return std::stoi(part.substr(5));
}

bool outside_reference_backbone(Naming naming, const std::string& key) {
    switch (naming) {
        case Naming::torchvision:
            return starts_with(key, "features.8.") || starts_with(key, "classifier.");
        case Naming::timm:
            return starts_with(key, "conv_head.") || starts_with(key, "bn2.") ||
                   starts_with(key, "classifier.");
        case Naming::yolov5: {
            const auto p = split(key);
            return p.size() >= 2 && p[0] == "model" && is_number(p[1]) && std::stoi(p[1]) >= 10;
        }
        case Naming::smartcash:
            return false;
    }
    return false;
}

std::vector<Naming> namings_for(Backbone backbone) {
    if (backbone == Backbone::efficientnet_b4)
        return {Naming::smartcash, Naming::torchvision, Naming::timm};
    return {Naming::smartcash, Naming::yolov5};
}

const char* to_string(Naming naming) {
    switch (naming) {
        case Naming::smartcash:
            return "smartcash";
        case Naming::torchvision:
            return "torchvision";
        case Naming::timm:
            return "timm";
        case Naming::yolov5:
            return "yolov5";
    }
    return "smartcash";
}

Naming naming_from(const std::string& name) {
    for (Naming n : {Naming::smartcash, Naming::torchvision, Naming::timm, Naming::yolov5})
        if (name == to_string(n)) return n;
    throw std::invalid_argument("unknown naming '" + name +
                                "' (expected smartcash, torchvision, timm or yolov5)");
}

std::string reference_name(Naming naming, Backbone backbone, const std::string& ours,
                           bool has_expand) {
    const auto p = split(ours);
    if (p.empty()) return {};
    switch (naming) {
        case Naming::smartcash:
            return backbone_prefix + ours;
        case Naming::torchvision:
            return backbone == Backbone::efficientnet_b4 ? efficientnet_torchvision(p, has_expand)
                                                         : std::string();
        case Naming::timm:
            return backbone == Backbone::efficientnet_b4 ? efficientnet_timm(p, has_expand)
                                                         : std::string();
        case Naming::yolov5:
            return backbone == Backbone::cspdarknet ? cspdarknet_yolov5(p) : std::string();
    }
    return {};
}

}  // namespace smartcash::model
