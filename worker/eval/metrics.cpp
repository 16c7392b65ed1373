#include "worker/eval/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <unordered_map>

namespace smartcash::eval {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Float IoU of boxes built at an exact overlap can land a rounding step below it.
constexpr double kIouTolerance = 1e-6;

// Mean of the non-NaN values; NaN when there are none.
double mean_defined(const std::vector<double>& values) {
    double sum = 0.0;
    int count = 0;
    for (const double v : values) {
        if (!std::isnan(v)) {
            sum += v;
            ++count;
        }
    }
    return count > 0 ? sum / count : kNaN;
}

struct OperatingPoint {
    double precision = 0.0;
    double recall = 0.0;
};

// Precision and recall at the score threshold with the best F1. Only cut between distinct scores:
// a threshold cannot keep one of two equally scored detections and drop the other.
OperatingPoint best_f1(const std::vector<bool>& tp, const std::vector<float>& sorted_scores,
                       int num_gt) {
    OperatingPoint best;
    double best_f1 = -1.0;
    int cum_tp = 0;
    for (std::size_t i = 0; i < tp.size(); ++i) {
        cum_tp += tp[i] ? 1 : 0;
        if (i + 1 < tp.size() && sorted_scores[i + 1] == sorted_scores[i]) {
            continue;
        }
        const double p = static_cast<double>(cum_tp) / static_cast<double>(i + 1);
        const double r = static_cast<double>(cum_tp) / num_gt;
        const double f1 = (p + r) > 0.0 ? 2.0 * p * r / (p + r) : 0.0;
        if (f1 > best_f1) {
            best_f1 = f1;
            best = {p, r};
        }
    }
    if (best_f1 <= 0.0) {
        return {};
    }
    return best;
}

// Ground truths of one class, grouped by image.
struct ClassTruths {
    std::unordered_map<int, std::vector<Box>> by_image;
    int count = 0;
};

// For each detection (already in rank order) the IoU with every truth of its image and class.
std::vector<std::vector<float>> overlaps(const std::vector<const Detection*>& ranked,
                                         const ClassTruths& truths) {
    std::vector<std::vector<float>> out(ranked.size());
    for (std::size_t d = 0; d < ranked.size(); ++d) {
        const auto it = truths.by_image.find(ranked[d]->image);
        if (it == truths.by_image.end()) {
            continue;
        }
        out[d].reserve(it->second.size());
        for (const Box& gt : it->second) {
            out[d].push_back(iou(ranked[d]->box, gt));
        }
    }
    return out;
}

// Greedy matching at one threshold: true-positive flag per ranked detection.
std::vector<bool> match(const std::vector<const Detection*>& ranked,
                        const std::vector<std::vector<float>>& ious, const ClassTruths& truths,
                        double threshold) {
    std::unordered_map<int, std::vector<bool>> taken;
    for (const auto& [image, boxes] : truths.by_image) {
        taken[image].assign(boxes.size(), false);
    }
    std::vector<bool> tp(ranked.size(), false);
    for (std::size_t d = 0; d < ranked.size(); ++d) {
        if (ious[d].empty()) {
            continue;
        }
        std::vector<bool>& used = taken[ranked[d]->image];
        int best = -1;
        double best_iou = threshold - kIouTolerance;
        for (std::size_t g = 0; g < ious[d].size(); ++g) {
            if (!used[g] && ious[d][g] >= best_iou) {
                // Strictly better only, so equal overlaps go to the first truth listed.
                if (best < 0 || ious[d][g] > best_iou) {
                    best = static_cast<int>(g);
                    best_iou = ious[d][g];
                }
            }
        }
        if (best >= 0) {
            used[static_cast<std::size_t>(best)] = true;
            tp[d] = true;
        }
    }
    return tp;
}

}  // namespace

double iou_threshold(int i) { return 0.50 + 0.05 * i; }

double average_precision(const std::vector<bool>& tp, int num_gt) {
    if (num_gt <= 0) {
        return kNaN;
    }
    const std::size_t n = tp.size();
    std::vector<double> precision(n);
    std::vector<double> recall(n);
    int cum_tp = 0;
    for (std::size_t i = 0; i < n; ++i) {
        cum_tp += tp[i] ? 1 : 0;
        precision[i] = static_cast<double>(cum_tp) / static_cast<double>(i + 1);
        recall[i] = static_cast<double>(cum_tp) / num_gt;
    }
    // Envelope: the best precision available at this recall or any higher one.
    for (std::size_t i = n; i-- > 1;) {
        precision[i - 1] = std::max(precision[i - 1], precision[i]);
    }
    double sum = 0.0;
    std::size_t rank = 0;
    for (int k = 0; k < kNumRecallPoints; ++k) {
        // k / 100.0 keeps 0.5, 0.25, ... exact, so recall 1/2 reaches the point 0.50.
        const double point = k / static_cast<double>(kNumRecallPoints - 1);
        while (rank < n && recall[rank] < point) {
            ++rank;
        }
        if (rank == n) {
            break;  // recall never reaches this point or any later one: they add 0
        }
        sum += precision[rank];
    }
    return sum / kNumRecallPoints;
}

EvalResult evaluate(const std::vector<Detection>& detections,
                    const std::vector<GroundTruth>& truths,
                    const std::vector<std::string>& class_names,
                    const std::vector<LayerGroup>& layers) {
    const int num_classes = static_cast<int>(class_names.size());
    std::vector<ClassTruths> truths_by_class(class_names.size());
    for (const GroundTruth& gt : truths) {
        if (gt.cls < 0 || gt.cls >= num_classes) {
            throw std::invalid_argument(fmt::format(
                "evaluate: ground truth class {} outside the {} class names", gt.cls, num_classes));
        }
        ClassTruths& ct = truths_by_class[static_cast<std::size_t>(gt.cls)];
        ct.by_image[gt.image].push_back(gt.box);
        ++ct.count;
    }
    std::vector<std::vector<const Detection*>> ranked(class_names.size());
    for (const Detection& det : detections) {
        if (det.cls < 0 || det.cls >= num_classes) {
            throw std::invalid_argument(fmt::format(
                "evaluate: detection class {} outside the {} class names", det.cls, num_classes));
        }
        ranked[static_cast<std::size_t>(det.cls)].push_back(&det);
    }
    for (const LayerGroup& layer : layers) {
        if (layer.first_class < 0 || layer.num_classes < 0 ||
            layer.first_class + layer.num_classes > num_classes) {
            throw std::invalid_argument(fmt::format(
                "evaluate: layer {} covers classes [{}, {}) outside the {} class names", layer.name,
                layer.first_class, layer.first_class + layer.num_classes, num_classes));
        }
    }

    EvalResult result;
    result.classes.reserve(class_names.size());
    for (int c = 0; c < num_classes; ++c) {
        const auto uc = static_cast<std::size_t>(c);
        std::vector<const Detection*>& dets = ranked[uc];
        std::stable_sort(dets.begin(), dets.end(), [](const Detection* a, const Detection* b) {
            return a->score > b->score;
        });
        const ClassTruths& ct = truths_by_class[uc];

        ClassMetrics cm{
            c, class_names[uc], ct.count, static_cast<int>(dets.size()), kNaN, kNaN, kNaN, kNaN};
        if (ct.count > 0) {
            const auto ious = overlaps(dets, ct);
            double ap_sum = 0.0;
            for (int t = 0; t < kNumIouThresholds; ++t) {
                const std::vector<bool> tp = match(dets, ious, ct, iou_threshold(t));
                const double ap = average_precision(tp, ct.count);
                ap_sum += ap;
                if (t == 0) {
                    cm.ap50 = ap;
                    std::vector<float> scores(dets.size());
                    std::transform(dets.begin(), dets.end(), scores.begin(),
                                   [](const Detection* d) { return d->score; });
                    const OperatingPoint op = best_f1(tp, scores, ct.count);
                    cm.precision = op.precision;
                    cm.recall = op.recall;
                }
            }
            cm.ap50_95 = ap_sum / kNumIouThresholds;
        }
        result.classes.push_back(std::move(cm));
    }

    // Means over a class range; classes without ground truth are NaN and drop out.
    const auto summarise = [&](int first, int count, double& map50, double& map50_95,
                               double& precision, double& recall) {
        std::vector<double> ap50s, ap50_95s, ps, rs;
        for (int c = first; c < first + count; ++c) {
            const ClassMetrics& cm = result.classes[static_cast<std::size_t>(c)];
            ap50s.push_back(cm.ap50);
            ap50_95s.push_back(cm.ap50_95);
            ps.push_back(cm.precision);
            rs.push_back(cm.recall);
        }
        map50 = mean_defined(ap50s);
        map50_95 = mean_defined(ap50_95s);
        precision = mean_defined(ps);
        recall = mean_defined(rs);
    };
    summarise(0, num_classes, result.map50, result.map50_95, result.precision, result.recall);
    for (const LayerGroup& layer : layers) {
        LayerMetrics lm{layer.name, kNaN, kNaN, kNaN, kNaN};
        summarise(layer.first_class, layer.num_classes, lm.map50, lm.map50_95, lm.precision,
                  lm.recall);
        result.layers.push_back(std::move(lm));
    }
    return result;
}

namespace {

nlohmann::json number_or_null(double v) {
    return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
}

}  // namespace

nlohmann::json to_json(const EvalResult& result) {
    nlohmann::json classes = nlohmann::json::array();
    for (const ClassMetrics& cm : result.classes) {
        classes.push_back({{"cls", cm.cls},
                           {"name", cm.name},
                           {"num_gt", cm.num_gt},
                           {"num_det", cm.num_det},
                           {"ap50", number_or_null(cm.ap50)},
                           {"ap50_95", number_or_null(cm.ap50_95)},
                           {"precision", number_or_null(cm.precision)},
                           {"recall", number_or_null(cm.recall)}});
    }
    nlohmann::json layers = nlohmann::json::array();
    for (const LayerMetrics& lm : result.layers) {
        layers.push_back({{"name", lm.name},
                          {"map50", number_or_null(lm.map50)},
                          {"map50_95", number_or_null(lm.map50_95)},
                          {"precision", number_or_null(lm.precision)},
                          {"recall", number_or_null(lm.recall)}});
    }
    return {{"map50", number_or_null(result.map50)},
            {"map50_95", number_or_null(result.map50_95)},
            {"precision", number_or_null(result.precision)},
            {"recall", number_or_null(result.recall)},
            {"classes", std::move(classes)},
            {"layers", std::move(layers)}};
}

}  // namespace smartcash::eval
