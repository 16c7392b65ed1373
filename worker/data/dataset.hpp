// Opening a YOLO-format dataset: a Roboflow export (data.yaml) or the plain images/ + labels/
// layout. Labels are read and validated up front; images are only checked for existence here
// and decoded when a sample is loaded.
#pragma once

#include <cstdint>
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
    std::vector<std::string> names;  ///< the model's class names, index = class id of the labels
    /// The names as the export lists them (empty for the plain layout).
    std::vector<std::string> export_names;
    /// Export class id -> model class id, applied to every label read; empty: the same order.
    std::vector<int> class_map;
    Split train, valid, test;
    std::vector<LabelIssue> issues;  ///< label lines dropped under BadLabelPolicy::skip
    int skipped = 0;                 ///< number of dropped label lines
};

/// What a resume checks about the dataset of one split: the number of images and a SHA-256 over
/// their paths relative to the dataset root, sorted (names only, so it is cheap to compute).
struct SplitIdentity {
    std::int64_t images = 0;
    std::string files_sha256;
};

/// The identity of the splits that training uses: train (the data order, the steps per epoch)
/// and valid (the mAP that picks the best epoch and stops early). The test split is not used
/// by training and is left out.
struct DatasetIdentity {
    SplitIdentity train, valid;
};

DatasetIdentity dataset_identity(const Dataset& dataset);

/// How `now` differs from `saved`, one phrase per changed split ("the train split has 30 images,
/// the checkpoint's had 32"); empty when they agree.
std::vector<std::string> dataset_changes(const DatasetIdentity& saved, const DatasetIdentity& now);

/// The 17 SmartCash class names: layer_1 denominations, layer_2 denomination features,
/// layer_3 security features.
const std::vector<std::string>& default_class_names();

/// Opens a dataset. `path` is a data.yaml, a directory holding one, or a directory in the plain
/// layout images/{train,valid|val,test} + labels/{...}. Bad label lines either throw DataError
/// (policy fail: the first issue and how many others) or are dropped and recorded (policy skip).
/// With the 17 SmartCash classes, data.yaml's names are matched to the model's classes by name
/// (any order; the labels are translated), and an unknown, missing or repeated name is a
/// DataError listing the export's names.
/// Throws DataError when nc differs from `expected_classes`, names has the wrong length, the
/// train path does not exist, or the train split is empty. A val or test path that does not
/// exist gives an empty split.
Dataset open_dataset(const std::string& path, BadLabelPolicy policy, int expected_classes = 17);

}  // namespace smartcash::data
