// Box overlap and class-aware NMS.

#include <gtest/gtest.h>

#include <stdexcept>

#include "worker/eval/boxes.hpp"
#include "worker/eval/nms.hpp"

namespace {

using smartcash::eval::Box;
using smartcash::eval::iou;
using smartcash::eval::nms;

TEST(EvalIou, KnownOverlaps) {
    const Box a{0, 0, 10, 10};
    EXPECT_FLOAT_EQ(iou(a, a), 1.0F);
    // Same height, 6 of 10 columns: intersection 60, union 100.
    EXPECT_FLOAT_EQ(iou(a, Box{0, 0, 10, 6}), 0.6F);
    // Shifted by half: intersection 50, union 150.
    EXPECT_FLOAT_EQ(iou(a, Box{5, 0, 15, 10}), 1.0F / 3.0F);
    EXPECT_FLOAT_EQ(iou(a, Box{10, 0, 20, 10}), 0.0F);  // touching edges do not overlap
    EXPECT_FLOAT_EQ(iou(a, Box{20, 20, 30, 30}), 0.0F);
    EXPECT_FLOAT_EQ(iou(a, Box{5, 5, 5, 5}), 0.0F);                // empty box
    EXPECT_FLOAT_EQ(iou(Box{3, 3, 1, 1}, Box{3, 3, 1, 1}), 0.0F);  // inverted box is empty
}

TEST(EvalNms, RemovesOverlappingSameClassKeepsOtherClasses) {
    const std::vector<Box> boxes{
        {0, 0, 10, 10},    // 0: class 0, best
        {1, 0, 11, 10},    // 1: class 0, IoU 9/11 with 0 -> suppressed
        {0, 0, 10, 10},    // 2: class 1, same place as 0 -> kept (other class)
        {50, 50, 60, 60},  // 3: class 0, far away -> kept
    };
    const std::vector<float> scores{0.9F, 0.8F, 0.7F, 0.6F};
    const std::vector<int> classes{0, 0, 1, 0};
    const auto kept = nms(boxes, scores, classes, 0.5F, 100);
    EXPECT_EQ(kept, (std::vector<std::size_t>{0, 2, 3}));
}

TEST(EvalNms, HighestScoreFirstWhateverTheInputOrder) {
    const std::vector<Box> boxes{{0, 0, 10, 10}, {1, 0, 11, 10}, {100, 0, 110, 10}};
    const std::vector<float> scores{0.3F, 0.9F, 0.5F};
    const std::vector<int> classes{2, 2, 2};
    // Box 1 outranks box 0 and suppresses it.
    EXPECT_EQ(nms(boxes, scores, classes, 0.5F, 10), (std::vector<std::size_t>{1, 2}));
}

TEST(EvalNms, ThresholdIsStrict) {
    const std::vector<Box> boxes{{0, 0, 10, 10}, {0, 0, 10, 5}};  // IoU exactly 0.5
    const std::vector<float> scores{0.9F, 0.8F};
    const std::vector<int> classes{0, 0};
    EXPECT_EQ(nms(boxes, scores, classes, 0.5F, 10).size(), 2U);
    EXPECT_EQ(nms(boxes, scores, classes, 0.49F, 10).size(), 1U);
}

TEST(EvalNms, MaxDetAndTies) {
    const std::vector<Box> boxes{{0, 0, 1, 1}, {10, 0, 11, 1}, {20, 0, 21, 1}, {30, 0, 31, 1}};
    const std::vector<float> scores{0.5F, 0.5F, 0.7F, 0.5F};
    const std::vector<int> classes{0, 0, 0, 0};
    // Equal scores keep input order; the cap keeps the best.
    EXPECT_EQ(nms(boxes, scores, classes, 0.5F, 3), (std::vector<std::size_t>{2, 0, 1}));
    EXPECT_TRUE(nms(boxes, scores, classes, 0.5F, 0).empty());
    EXPECT_TRUE(nms({}, {}, {}, 0.5F, 10).empty());
}

TEST(EvalNms, MismatchedInputsThrow) {
    EXPECT_THROW(nms({{0, 0, 1, 1}}, {0.5F, 0.4F}, {0}, 0.5F, 10), std::invalid_argument);
    EXPECT_THROW(nms({{0, 0, 1, 1}}, {0.5F}, {}, 0.5F, 10), std::invalid_argument);
}

}  // namespace
