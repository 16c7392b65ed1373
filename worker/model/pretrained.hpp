// Starting from pretrained weights: a backbone (or a whole detector) read from a safetensors file
// or a torch.save state dict, under the parameter names of the reference it came from.
//
// Names understood:
//   efficientnet_b4  torchvision  features.2.0.block.0.0.weight
//   (torchvision.models.efficientnet_b4)
//                    timm         blocks.1.0.conv_pw.weight        (timm's efficientnet_b4)
//   cspdarknet       yolov5       model.2.m.0.cv1.conv.weight      (YOLOv5 v6+, P5 backbone)
//   both             smartcash    backbone.stage2.0.expand.conv.weight  (our own export)
// The scheme is detected from the keys. Tensors of the reference that lie outside the backbone
// (torchvision's last 1x1 conv and classifier, timm's conv_head/bn2/classifier, YOLOv5's head)
// are ignored, and said so.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/config.hpp"
#include "worker/model/detector.hpp"
#include "worker/model/pretrained_names.hpp"
#include "worker/model/safetensors.hpp"

namespace smartcash::model {

/// A weights file read into memory.
struct WeightsFile {
    std::string path;
    std::string sha256;  ///< of the file's bytes
    std::string format;  ///< "safetensors" or "torch.save"
    NamedTensors content;
};

/// Reads a safetensors file or a torch.save zip archive of a state dict (a dict of tensors, or a
/// dict holding one under "state_dict" or "model"). Throws WeightsFileError naming the file.
WeightsFile read_weights_file(const std::string& path);

/// What loading a weights file into a detector would do.
struct PretrainedPlan {
    std::string path;
    std::string sha256;
    std::string format;
    Naming naming = Naming::smartcash;
    bool whole_detector = false;  ///< smartcash names beyond the backbone: every tensor loads
    InputNormalization normalization = InputNormalization::none;
    /// (our tensor name, file key) pairs that load: present with the right shape.
    std::vector<std::pair<std::string, std::string>> load;
    /// Our tensors the file lacks, as "ours (expected key)".
    std::vector<std::string> missing;
    /// File keys that nothing of ours maps to (and that are not known to lie outside the backbone).
    std::vector<std::string> unexpected;
    /// "ours [shape] <- key [shape]" for each pair whose shapes differ.
    std::vector<std::string> wrong_shape;
    /// File keys of the reference outside its backbone (classifier, head), left out on purpose.
    std::vector<std::string> ignored;
    std::int64_t values = 0;  ///< numbers that load

    bool complete() const { return missing.empty() && unexpected.empty() && wrong_shape.empty(); }
};

/// A user-caused problem with the pretrained weights (no known naming, missing or unexpected
/// tensors under strict loading). what() names the file and the tensors.
class PretrainedError : public WeightsFileError {
  public:
    using WeightsFileError::WeightsFileError;
};

/// Matches a weights file against `model`: detects the naming (the one under which most of our
/// backbone's tensors are found) and sorts every tensor into load / missing / unexpected /
/// wrong shape / ignored. Throws PretrainedError when no naming matches any tensor.
PretrainedPlan plan_pretrained(DetectorImpl& model, const WeightsFile& file);

/// Copies the plan's tensors into `model` (any device) and sets the model's input normalization.
/// With `strict`, a plan that is not complete throws PretrainedError listing what is wrong and
/// loads nothing.
void apply_pretrained(DetectorImpl& model, const PretrainedPlan& plan, const WeightsFile& file,
                      bool strict);

/// Human-readable account of a plan: file, format, naming, counts, then every missing,
/// unexpected and wrong-shape name (at most `max_listed` of each; 0: all).
std::string describe(const PretrainedPlan& plan, std::size_t max_listed = 0);

/// The plan as JSON: what model-info --json prints and what a checkpoint records (file, sha256,
/// format, naming, whole_detector, input_normalization, loaded/missing/unexpected/wrong_shape
/// counts and names).
nlohmann::json to_json(const PretrainedPlan& plan);

/// A fresh run's start: loads `config.pretrained` (when set) into `model` under
/// `config.pretrained_strict`. Problems are ConfigErrors on key model.pretrained of
/// `config_file`. Returns the plan's JSON record, or null when no file is configured.
nlohmann::json start_from_pretrained(DetectorImpl& model, const ModelConfig& config,
                                     const std::string& config_file);

/// One line for a run's log from a start_from_pretrained() record.
std::string pretrained_summary(const nlohmann::json& record);

/// Writes the model's tensors (parameters and buffers; with `backbone_only`, the backbone's
/// only) as safetensors under `naming` (smartcash: our names; torchvision/timm/yolov5: the
/// reference's backbone names). The metadata records the input normalization and the backbone.
std::string export_weights(DetectorImpl& model, Naming naming, bool backbone_only);

}  // namespace smartcash::model
