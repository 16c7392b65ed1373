#include "worker/eval/nms.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>

namespace smartcash::eval {

std::vector<std::size_t> nms(const std::vector<Box>& boxes, const std::vector<float>& scores,
                             const std::vector<int>& classes, float iou_threshold,
                             std::size_t max_det) {
    if (boxes.size() != scores.size() || boxes.size() != classes.size()) {
        throw std::invalid_argument("nms: boxes, scores and classes differ in length");
    }
    std::vector<std::size_t> order(boxes.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });

    std::vector<std::size_t> kept;
    kept.reserve(std::min(max_det, boxes.size()));
    for (const std::size_t candidate : order) {
        if (kept.size() >= max_det) {
            break;
        }
        const bool suppressed = std::any_of(kept.begin(), kept.end(), [&](std::size_t k) {
            return classes[k] == classes[candidate] &&
                   iou(boxes[k], boxes[candidate]) > iou_threshold;
        });
        if (!suppressed) {
            kept.push_back(candidate);
        }
    }
    return kept;
}

}  // namespace smartcash::eval
