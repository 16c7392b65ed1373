#include "worker/model/pretrained.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "common/atomic_file.hpp"
#include "common/sha256.hpp"
#include "worker/model/pretrained_names.hpp"

namespace smartcash::model {
namespace {

using Json = nlohmann::json;

const std::string backbone_prefix = "backbone.";

bool starts_with(const std::string& s, const std::string& prefix) {
    return s.compare(0, prefix.size(), prefix) == 0;
}

/// Our tensors (parameters, then buffers) by full name, in the model's order.
std::vector<std::pair<std::string, torch::Tensor>> named_tensors(torch::nn::Module& module) {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (const auto& item : module.named_parameters(/*recurse=*/true))
        out.emplace_back(item.key(), item.value());
    for (const auto& item : module.named_buffers(/*recurse=*/true))
        out.emplace_back(item.key(), item.value());
    return out;
}

bool is_batch_count(const std::string& name) {
    const std::string suffix = "num_batches_tracked";
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_text(const torch::Tensor& t) {
    std::string out = "[";
    for (int64_t i = 0; i < t.dim(); ++i) out += (i ? ", " : "") + std::to_string(t.size(i));
    return out + "]";
}

/// The expansion flag of the MBConv block a backbone name belongs to.
bool block_has_expand(const std::set<std::string>& backbone_names,
                      const std::vector<std::string>& p) {
    if (p.size() < 2 || stage_number(p[0]) == 0) return false;
    return backbone_names.count(p[0] + "." + p[1] + ".expand.conv.weight") > 0;
}

NamedTensors dict_to_tensors(const c10::IValue& value, const std::string& path) {
    NamedTensors out;
    if (!value.isGenericDict())
        throw WeightsFileError(path + ": the torch.save file does not hold a dict of tensors");
    const auto dict = value.toGenericDict();
    // A training checkpoint that wraps the state dict.
    bool has_tensor = false;
    for (const auto& entry : dict)
        if (entry.value().isTensor()) has_tensor = true;
    if (!has_tensor) {
        for (const char* wrapper : {"state_dict", "model"}) {
            for (const auto& entry : dict)
                if (entry.key().isString() && entry.key().toStringRef() == wrapper &&
                    entry.value().isGenericDict())
                    return dict_to_tensors(entry.value(), path + " [" + wrapper + "]");
        }
        throw WeightsFileError(path +
                               ": the torch.save file holds a dict without tensors (nor a "
                               "state_dict or model entry of tensors)");
    }
    for (const auto& entry : dict) {
        if (!entry.key().isString())
            throw WeightsFileError(path + ": the state dict has a key that is not a string");
        const std::string name = entry.key().toStringRef();
        if (!entry.value().isTensor())
            throw WeightsFileError(
                fmt::format("{}: state dict entry '{}' is not a tensor", path, name));
        out.tensors.emplace_back(name, entry.value().toTensor());
    }
    return out;
}

std::string list_block(const char* title, const std::vector<std::string>& names,
                       size_t max_listed) {
    if (names.empty()) return {};
    std::string out = fmt::format("  {} ({}):\n", title, names.size());
    const size_t shown = max_listed == 0 ? names.size() : std::min(names.size(), max_listed);
    for (size_t i = 0; i < shown; ++i) out += "    " + names[i] + "\n";
    if (shown < names.size()) out += fmt::format("    ... and {} more\n", names.size() - shown);
    return out;
}

}  // namespace

WeightsFile read_weights_file(const std::string& path) {
    WeightsFile file;
    file.path = path;
    std::string bytes;
    try {
        bytes = read_file(path);
    } catch (const std::exception& e) {
        throw WeightsFileError(fmt::format("{}: cannot read the weights file: {}", path, e.what()));
    }
    file.sha256 = sha256_hex(bytes);
    if (looks_like_safetensors(bytes)) {
        file.format = "safetensors";
        file.content = parse_safetensors(bytes, path);
    } else if (bytes.size() >= 4 && bytes.compare(0, 4, "PK\x03\x04") == 0) {
        file.format = "torch.save";
        c10::IValue value;
        try {
            value = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
        } catch (const std::exception& e) {
            std::string what = e.what();
            throw WeightsFileError(fmt::format(
                "{}: cannot read the torch.save archive: {} (LibTorch reads a plain dict of "
                "tensors; a module's state_dict() is an OrderedDict with metadata that LibTorch "
                "1.13 cannot unpickle: save dict(model.state_dict()) instead, or a safetensors "
                "file)",
                path, what.substr(0, what.find('\n'))));
        }
        file.content = dict_to_tensors(value, path);
    } else {
        throw WeightsFileError(
            path +
            ": neither a safetensors file nor a torch.save zip archive (PyTorch's "
            "legacy pre-1.6 format is not read: save it again with torch.save)");
    }
    if (file.content.tensors.empty()) throw WeightsFileError(path + ": the file holds no tensors");
    return file;
}

PretrainedPlan plan_pretrained(DetectorImpl& model, const WeightsFile& file) {
    PretrainedPlan plan;
    plan.path = file.path;
    plan.sha256 = file.sha256;
    plan.format = file.format;
    const Backbone backbone = model.options().backbone;

    // The file's keys, without a DataParallel "module." prefix.
    std::map<std::string, size_t> keys;
    const std::string wrapper = "module.";
    bool all_wrapped = true;
    for (const auto& [name, t] : file.content.tensors)
        all_wrapped = all_wrapped && starts_with(name, wrapper);
    for (size_t i = 0; i < file.content.tensors.size(); ++i) {
        std::string name = file.content.tensors[i].first;
        if (all_wrapped) name = name.substr(wrapper.size());
        keys[name] = i;
    }

    const auto backbone_tensors = named_tensors(model.backbone_module());
    std::set<std::string> backbone_names;
    for (const auto& [name, t] : backbone_tensors) backbone_names.insert(name);
    auto key_for = [&](Naming naming, const std::string& ours) {
        return reference_name(naming, backbone, ours,
                              block_has_expand(backbone_names, split_name(ours)));
    };

    // The naming under which most of our backbone's weights are found.
    size_t best_hits = 0;
    for (Naming naming : namings_for(backbone)) {
        size_t hits = 0;
        for (const auto& [name, t] : backbone_tensors) hits += keys.count(key_for(naming, name));
        if (hits > best_hits) {
            best_hits = hits;
            plan.naming = naming;
        }
    }
    if (best_hits == 0) {
        std::string sample;
        size_t n = 0;
        for (const auto& [key, i] : keys) {
            if (n++ == 5) break;
            sample += (sample.empty() ? "" : ", ") + key;
        }
        std::string known;
        for (Naming naming : namings_for(backbone))
            known += (known.empty() ? "" : ", ") + std::string(to_string(naming));
        throw PretrainedError(fmt::format(
            "{}: no {} backbone weights found: its keys ({}{}) match none of the names {} uses",
            file.path, to_string(backbone), sample, keys.size() > 5 ? ", ..." : "", known));
    }

    // What we expect: the backbone, or every tensor when our own file holds more than that.
    const auto all_tensors = named_tensors(model);
    std::vector<std::pair<std::string, std::string>> expected;  // (our full name, file key)
    if (plan.naming == Naming::smartcash) {
        for (const auto& [name, t] : all_tensors)
            if (!starts_with(name, backbone_prefix) && keys.count(name)) plan.whole_detector = true;
        for (const auto& [name, t] : all_tensors)
            if (plan.whole_detector || starts_with(name, backbone_prefix))
                expected.emplace_back(name, name);
    } else {
        for (const auto& [name, t] : backbone_tensors)
            expected.emplace_back(backbone_prefix + name, key_for(plan.naming, name));
    }

    std::map<std::string, torch::Tensor> ours;
    for (const auto& [name, t] : all_tensors) ours[name] = t;
    std::set<std::string> used;
    for (const auto& [name, key] : expected) {
        auto it = key.empty() ? keys.end() : keys.find(key);
        if (it == keys.end()) {
            // BatchNorm's batch counter does not change what the layer computes: optional.
            if (!is_batch_count(name))
                plan.missing.push_back(key.empty() ? name : name + " (" + key + ")");
            continue;
        }
        used.insert(key);
        const auto& theirs = file.content.tensors[it->second].second;
        const auto& mine = ours.at(name);
        if (!theirs.sizes().equals(mine.sizes())) {
            plan.wrong_shape.push_back(
                fmt::format("{} {} <- {} {}", name, shape_text(mine), key, shape_text(theirs)));
            continue;
        }
        plan.load.emplace_back(name, key);
        plan.values += mine.numel();
    }
    for (const auto& [key, i] : keys) {
        if (used.count(key)) continue;
        (outside_reference_backbone(plan.naming, key) ? plan.ignored : plan.unexpected)
            .push_back(key);
    }

    // The input the weights were trained on: ImageNet statistics for torchvision and timm, [0, 1]
    // for YOLOv5, and what our own export recorded.
    switch (plan.naming) {
        case Naming::torchvision:
        case Naming::timm:
            plan.normalization = InputNormalization::imagenet;
            break;
        case Naming::yolov5:
            plan.normalization = InputNormalization::none;
            break;
        case Naming::smartcash: {
            const auto it = file.content.metadata.find("input_normalization");
            try {
                plan.normalization = it == file.content.metadata.end()
                                         ? InputNormalization::none
                                         : input_normalization_from(it->second);
            } catch (const std::invalid_argument& e) {
                throw PretrainedError(
                    fmt::format("{}: metadata input_normalization: {}", file.path, e.what()));
            }
            break;
        }
    }
    return plan;
}

void apply_pretrained(DetectorImpl& model, const PretrainedPlan& plan, const WeightsFile& file,
                      bool strict) {
    if (strict && !plan.complete())
        throw PretrainedError(fmt::format(
            "{} does not fit the {} backbone{}:\n{}(set model.pretrained_strict: false, or "
            "--pretrained-strict false, to load what fits and go on)",
            plan.path, to_string(model.options().backbone),
            plan.whole_detector ? " and detector" : "", describe(plan, 20)));
    std::map<std::string, torch::Tensor> ours;
    for (const auto& [name, t] : named_tensors(model)) ours[name] = t;
    std::map<std::string, torch::Tensor> theirs;
    const std::string wrapper = "module.";
    for (const auto& [name, t] : file.content.tensors) {
        theirs[name] = t;
        if (starts_with(name, wrapper)) theirs.emplace(name.substr(wrapper.size()), t);
    }
    torch::NoGradGuard no_grad;
    for (const auto& [name, key] : plan.load) {
        auto& dest = ours.at(name);
        dest.copy_(theirs.at(key).to(dest.scalar_type()));
    }
    model.set_input_normalization(plan.normalization);
}

std::string describe(const PretrainedPlan& plan, std::size_t max_listed) {
    std::string out = fmt::format(
        "  file:          {}\n"
        "  sha256:        {}\n"
        "  format:        {}\n"
        "  names:         {}\n"
        "  loads:         {} tensors ({} values){}\n"
        "  input:         {}\n"
        "  ignored:       {} tensors outside the reference's backbone\n",
        plan.path, plan.sha256, plan.format, to_string(plan.naming), plan.load.size(), plan.values,
        plan.whole_detector ? ", the whole detector" : ", the backbone",
        plan.normalization == InputNormalization::imagenet ? "ImageNet mean/std normalization"
                                                           : "[0, 1], no normalization",
        plan.ignored.size());
    out += list_block("missing", plan.missing, max_listed);
    out += list_block("unexpected", plan.unexpected, max_listed);
    out += list_block("wrong shape", plan.wrong_shape, max_listed);
    return out;
}

nlohmann::json to_json(const PretrainedPlan& plan) {
    return Json{{"file", plan.path},
                {"sha256", plan.sha256},
                {"format", plan.format},
                {"naming", to_string(plan.naming)},
                {"whole_detector", plan.whole_detector},
                {"input_normalization", to_string(plan.normalization)},
                {"loaded_tensors", plan.load.size()},
                {"loaded_values", plan.values},
                {"ignored", plan.ignored.size()},
                {"missing", plan.missing},
                {"unexpected", plan.unexpected},
                {"wrong_shape", plan.wrong_shape}};
}

nlohmann::json start_from_pretrained(DetectorImpl& model, const ModelConfig& config,
                                     const std::string& config_file) {
    if (config.pretrained.empty()) return nullptr;
    try {
        const auto file = read_weights_file(config.pretrained);
        const auto plan = plan_pretrained(model, file);
        apply_pretrained(model, plan, file, config.pretrained_strict);
        return to_json(plan);
    } catch (const WeightsFileError& e) {
        throw ConfigError(config_file, 0, 0, "model.pretrained", e.what());
    }
}

std::string pretrained_summary(const nlohmann::json& record) {
    const auto count = [&](const char* key) {
        return record.contains(key) ? record.at(key).size() : size_t{0};
    };
    std::string line = fmt::format(
        "started from pretrained weights {} (sha256 {}, {} names): {} {} tensors loaded, input {}",
        record.value("file", ""), record.value("sha256", ""), record.value("naming", ""),
        record.value("loaded_tensors", 0),
        record.value("whole_detector", false) ? "detector" : "backbone",
        record.value("input_normalization", "none") == std::string("imagenet")
            ? "normalized with ImageNet mean/std"
            : "in [0, 1]");
    if (count("missing") + count("unexpected") + count("wrong_shape") > 0)
        line += fmt::format("; not loaded: {} missing, {} unexpected, {} of the wrong shape",
                            count("missing"), count("unexpected"), count("wrong_shape"));
    return line;
}

std::string export_weights(DetectorImpl& model, Naming naming, bool backbone_only) {
    const Backbone backbone = model.options().backbone;
    if (naming != Naming::smartcash) {
        const auto valid = namings_for(backbone);
        if (std::find(valid.begin(), valid.end(), naming) == valid.end())
            throw std::invalid_argument(fmt::format("{} names do not describe a {} backbone",
                                                    to_string(naming), to_string(backbone)));
        if (!backbone_only)
            throw std::invalid_argument(fmt::format(
                "{} names cover the backbone only: export with the backbone only, or with "
                "smartcash names",
                to_string(naming)));
    }
    NamedTensors out;
    const auto backbone_tensors = named_tensors(model.backbone_module());
    std::set<std::string> backbone_names;
    for (const auto& [name, t] : backbone_tensors) backbone_names.insert(name);
    if (naming == Naming::smartcash && !backbone_only) {
        out.tensors = named_tensors(model);
    } else {
        for (const auto& [name, t] : backbone_tensors)
            out.tensors.emplace_back(
                reference_name(naming, backbone, name,
                               block_has_expand(backbone_names, split_name(name))),
                t);
    }
    out.metadata["format"] = "pt";
    out.metadata["backbone"] = to_string(backbone);
    out.metadata["naming"] = to_string(naming);
    out.metadata["input_normalization"] = to_string(model.input_normalization());
    return safetensors_bytes(out);
}

}  // namespace smartcash::model
