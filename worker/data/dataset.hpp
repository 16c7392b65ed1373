// Opening a YOLO-format dataset: a Roboflow export (data.yaml) or the plain images/ + labels/
// layout. Labels are read and validated up front; images are only checked for existence here
// and decoded when a sample is loaded.
#pragma once

#include <string>
#include <vector>

#include "common/config.hpp"
#include "worker/data/labels.hpp"

namespace smartcash::data {

/// One split: image paths (sorted by name) and, at the same index, that image's objects.
struct Split {
    std::vector<std::string> images;
    std::vector<std::vector<Label>> labels;

    std::size_t size() const { return images.size(); }
    bool empty() const { return images.empty(); }
};

struct Dataset {
    std::string root;                ///< directory the split paths were resolved against
    std::vector<std::string> names;  ///< class names, index = class id
    Split train, valid, test;
    std::vector<LabelIssue> issues;  ///< label lines dropped under BadLabelPolicy::skip
    int skipped = 0;                 ///< number of dropped label lines
};

/// The 17 SmartCash class names: layer_1 denominations, layer_2 denomination features,
/// layer_3 security features.
const std::vector<std::string>& default_class_names();

/// Opens a dataset. `path` is a data.yaml, a directory holding one, or a directory in the plain
/// layout images/{train,valid|val,test} + labels/{...}. Bad label lines either throw DataError
/// (policy fail: the first issue and how many others) or are dropped and recorded (policy skip).
/// Throws DataError when nc differs from `expected_classes`, names has the wrong length, the
/// train path does not exist, or the train split is empty. A val or test path that does not
/// exist gives an empty split.
Dataset open_dataset(const std::string& path, BadLabelPolicy policy, int expected_classes = 17);

}  // namespace smartcash::data
