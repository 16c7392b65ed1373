#pragma once
// Axis-aligned boxes and the records that evaluation matches against each other.

namespace smartcash::eval {

/// An axis-aligned box in corner form (x1, y1) top-left, (x2, y2) bottom-right, in any one unit
/// (pixels of the letterboxed image, or normalised) as long as detections and truths agree.
/// A box with x2 <= x1 or y2 <= y1 is empty: it has area 0 and overlaps nothing.
struct Box {
    float x1, y1, x2, y2;
};

/// Area of a box; 0 for an empty box.
float area(const Box& box);

/// Intersection over union of two boxes, in [0, 1]. 0 when either box is empty or the union is
/// empty. Computed in double and rounded once, so that hand-made boxes at a known overlap give
/// the value a reader expects.
float iou(const Box& a, const Box& b);

/// One predicted object after NMS: which image (any id that identifies it within one evaluation),
/// which class (index into the class names), its confidence and its box.
struct Detection {
    int image;
    int cls;
    float score;
    Box box;
};

/// One labelled object: image id, class index and box, in the same unit as the detections.
struct GroundTruth {
    int image;
    int cls;
    Box box;
};

}  // namespace smartcash::eval
