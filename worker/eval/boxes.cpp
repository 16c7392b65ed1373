#include "worker/eval/boxes.hpp"

#include <algorithm>

namespace smartcash::eval {

namespace {

double area_d(const Box& box) {
    const double w = static_cast<double>(box.x2) - box.x1;
    const double h = static_cast<double>(box.y2) - box.y1;
    return (w > 0.0 && h > 0.0) ? w * h : 0.0;
}

}  // namespace

float area(const Box& box) { return static_cast<float>(area_d(box)); }

float iou(const Box& a, const Box& b) {
    const double iw = std::min<double>(a.x2, b.x2) - std::max<double>(a.x1, b.x1);
    const double ih = std::min<double>(a.y2, b.y2) - std::max<double>(a.y1, b.y1);
    if (iw <= 0.0 || ih <= 0.0) {
        return 0.0F;
    }
    const double inter = iw * ih;
    const double uni = area_d(a) + area_d(b) - inter;
    return uni > 0.0 ? static_cast<float>(inter / uni) : 0.0F;
}

}  // namespace smartcash::eval
