// The parameter names of the references our pretrained weights come from, and how each of our
// backbone tensors is called there (see pretrained.hpp for the list of namings). Pure string
// rules: no tensors are read here.
#pragma once

#include <string>
#include <vector>

#include "common/config.hpp"

namespace smartcash::model {

enum class Naming { smartcash, torchvision, timm, yolov5 };

const char* to_string(Naming naming);
/// The naming called `name` (as to_string() writes it); throws std::invalid_argument.
Naming naming_from(const std::string& name);

/// The name `naming` gives to one of our backbone tensors (a name relative to the backbone, e.g.
/// "stage2.0.expand.conv.weight"); `has_expand` says whether that name's MBConv block has an
/// expansion conv (EfficientNet only). Empty when the naming has no such tensor.
std::string reference_name(Naming naming, Backbone backbone, const std::string& ours,
                           bool has_expand);

/// Whether a key of a `naming` file lies outside that reference's backbone (a classifier, a
/// detection head): such tensors are ignored, not unexpected.
bool outside_reference_backbone(Naming naming, const std::string& key);

/// The namings a backbone's weights can come under (ours first).
std::vector<Naming> namings_for(Backbone backbone);

/// "stageN" -> N (>= 1), or 0.
int stage_number(const std::string& part);

/// A dotted tensor name split at its dots.
std::vector<std::string> split_name(const std::string& name);

}  // namespace smartcash::model
