#pragma once
// Non-maximum suppression over the candidate boxes of one image.

#include <cstddef>
#include <vector>

#include "worker/eval/boxes.hpp"

namespace smartcash::eval {

/// Class-aware greedy non-maximum suppression over the candidates of one image.
///
/// Candidates are visited by descending score (equal scores keep their input order). A candidate
/// is kept unless a kept candidate of the same class overlaps it with IoU strictly greater than
/// `iou_threshold`; boxes of different classes never suppress each other, because a banknote and
/// its own security thread legitimately overlap. Stops once `max_det` candidates are kept.
///
/// Returns the indices of the kept candidates, highest score first.
/// Throws std::invalid_argument when the three inputs differ in length.
std::vector<std::size_t> nms(const std::vector<Box>& boxes, const std::vector<float>& scores,
                             const std::vector<int>& classes, float iou_threshold,
                             std::size_t max_det);

}  // namespace smartcash::eval
