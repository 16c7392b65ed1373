#pragma once
// Detection quality: COCO-style average precision, precision and recall, per class, per detection
// layer and overall.
//
// How the numbers are defined (the tests pin each rule down with hand-made boxes, and
// tests/reference/map_reference.py holds AP to a COCO-style evaluation; docs/evaluation.md lists
// where pycocotools differs):
//
// * Matching. Per class, detections are visited by descending score; equal scores keep their input
//   order (validation lists detections image by image, which is COCO's order for ties). Each
//   detection is matched, within its own image, to the unmatched ground truth of the same class
//   with the highest IoU, provided that IoU >= t (with a 1e-6 tolerance so a box built at exactly
//   IoU t counts at t despite float rounding). A matched detection is a true positive;
//   any other, including a second detection of an already matched object, is a false positive.
// * AP at one threshold t. Along the ranked list, precision = TP / (TP + FP) and recall = TP / GT.
//   The precision envelope replaces each precision by the maximum precision at any equal or higher
//   recall. It is sampled at the 101 recall points 0, 0.01, ..., 1: each point takes the envelope
//   at the first rank whose recall reaches it, or 0 when recall never reaches it. AP is the mean
//   of the 101 samples.
// * ap50 is AP at t = 0.50; ap50_95 is the mean AP over t = 0.50, 0.55, ..., 0.95 (10 values).
// * Precision and recall of a class are taken at IoU 0.50 at the score threshold that maximises
//   F1 = 2PR / (P + R) (thresholds are only placed between distinct scores; on a tie the higher
//   threshold wins). A class whose detections are all false positives, or that has none, gets
//   P = R = 0.
// * A class with no ground truth has no defined AP or recall: all four of its numbers are NaN
//   (printed as "-", null in JSON) and it is left out of every mean. A class with ground truth
//   but no detections has AP 0, P 0, R 0, and counts.
// * A layer's numbers are the means over its classes that have ground truth; the overall numbers
//   are the means over all classes that have ground truth. A mean over no class is NaN.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "worker/eval/boxes.hpp"

namespace smartcash::eval {

/// The IoU thresholds of mAP@0.5:0.95, in order.
inline constexpr int kNumIouThresholds = 10;
/// IoU threshold number i (0..9): 0.50 + 0.05 i.
double iou_threshold(int i);
/// Number of recall points AP is sampled at (0, 0.01, ..., 1).
inline constexpr int kNumRecallPoints = 101;

/// The numbers of one class. ap50, ap50_95, precision and recall are NaN when num_gt == 0.
struct ClassMetrics {
    int cls;
    std::string name;
    int num_gt;
    int num_det;
    double ap50, ap50_95, precision, recall;
};

/// Means over the classes of one detection layer that have ground truth.
struct LayerMetrics {
    std::string name;
    double map50, map50_95, precision, recall;
};

/// Overall means, then one row per class (in class order) and one per layer (in the order given).
struct EvalResult {
    double map50, map50_95, precision, recall;
    std::vector<ClassMetrics> classes;
    std::vector<LayerMetrics> layers;
};

/// A detection layer owns the contiguous class range [first_class, first_class + num_classes).
struct LayerGroup {
    std::string name;
    int first_class;
    int num_classes;
};

/// AP of one ranked list, from the 101-point precision envelope. `tp` flags each detection in
/// rank order as a true positive; `num_gt` is the number of ground truths (NaN when 0).
/// Exposed so the interpolation can be checked on its own.
double average_precision(const std::vector<bool>& tp, int num_gt);

/// Scores `detections` against `truths` for the classes named in `class_names` (class index =
/// position) and groups the classes into `layers` (may be empty). See the top of this file for
/// the exact rules.
/// Throws std::invalid_argument when a detection or truth has a class outside the names, or a
/// layer's range lies outside them.
EvalResult evaluate(const std::vector<Detection>& detections,
                    const std::vector<GroundTruth>& truths,
                    const std::vector<std::string>& class_names,
                    const std::vector<LayerGroup>& layers);

/// The result as JSON: {"map50", "map50_95", "precision", "recall", "classes": [{"cls", "name",
/// "num_gt", "num_det", "ap50", "ap50_95", "precision", "recall"}], "layers": [{"name", "map50",
/// "map50_95", "precision", "recall"}]}; NaN becomes null.
nlohmann::json to_json(const EvalResult& result);

}  // namespace smartcash::eval
