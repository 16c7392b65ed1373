// mAP, precision and recall on hand-made boxes whose answers are worked out in the comments.

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "worker/eval/metrics.hpp"

namespace {

using smartcash::eval::average_precision;
using smartcash::eval::Box;
using smartcash::eval::Detection;
using smartcash::eval::EvalResult;
using smartcash::eval::evaluate;
using smartcash::eval::GroundTruth;
using smartcash::eval::LayerGroup;

constexpr double kTol = 1e-9;

const std::vector<std::string> kTwoClasses{"a", "b"};

Box square(float x, float y, float side = 10.0F) { return Box{x, y, x + side, y + side}; }

TEST(EvalMetrics, IouThresholds) {
    EXPECT_NEAR(smartcash::eval::iou_threshold(0), 0.50, kTol);
    EXPECT_NEAR(smartcash::eval::iou_threshold(1), 0.55, kTol);
    EXPECT_NEAR(smartcash::eval::iou_threshold(9), 0.95, kTol);
}

TEST(EvalMetrics, PerfectDetectionsScoreOneEverywhere) {
    std::vector<GroundTruth> truths;
    std::vector<Detection> dets;
    for (int image = 0; image < 3; ++image) {
        for (int cls = 0; cls < 2; ++cls) {
            const Box box = square(20.0F * cls, 5.0F * image);
            truths.push_back({image, cls, box});
            dets.push_back({image, cls, 0.5F + 0.1F * image, box});
        }
    }
    const EvalResult r = evaluate(dets, truths, kTwoClasses, {});
    EXPECT_NEAR(r.map50, 1.0, kTol);
    EXPECT_NEAR(r.map50_95, 1.0, kTol);
    EXPECT_NEAR(r.precision, 1.0, kTol);
    EXPECT_NEAR(r.recall, 1.0, kTol);
    ASSERT_EQ(r.classes.size(), 2U);
    for (const auto& cm : r.classes) {
        EXPECT_EQ(cm.num_gt, 3);
        EXPECT_EQ(cm.num_det, 3);
        EXPECT_NEAR(cm.ap50, 1.0, kTol);
        EXPECT_NEAR(cm.ap50_95, 1.0, kTol);
    }
    EXPECT_EQ(r.classes[1].name, "b");
}

TEST(EvalMetrics, NoDetectionsScoreZero) {
    const std::vector<GroundTruth> truths{{0, 0, square(0, 0)}, {1, 1, square(0, 0)}};
    const EvalResult r = evaluate({}, truths, kTwoClasses, {});
    EXPECT_EQ(r.map50, 0.0);
    EXPECT_EQ(r.map50_95, 0.0);
    EXPECT_EQ(r.precision, 0.0);
    EXPECT_EQ(r.recall, 0.0);
    EXPECT_EQ(r.classes[0].num_det, 0);
}

TEST(EvalMetrics, HalfRight) {
    // Two objects, one found. The ranked list is [TP]: precision 1 at recall 0.5, and recall
    // never goes higher. Of the 101 recall points 0, 0.01, ..., 1, the 51 points 0 .. 0.50 see
    // precision 1 and the 50 points 0.51 .. 1 see 0, so AP = 51 / 101 = 0.50495..., not 0.5:
    // 101-point sampling counts the point at recall 0 as well.
    const std::vector<GroundTruth> truths{{0, 0, square(0, 0)}, {0, 0, square(50, 50)}};
    const std::vector<Detection> dets{{0, 0, 0.9F, square(0, 0)}};
    const EvalResult r = evaluate(dets, truths, {"a"}, {});
    EXPECT_NEAR(r.classes[0].ap50, 51.0 / 101.0, kTol);
    EXPECT_NEAR(r.classes[0].ap50_95, 51.0 / 101.0, kTol);  // the hit is exact at every threshold
    EXPECT_NEAR(r.classes[0].precision, 1.0, kTol);
    EXPECT_NEAR(r.classes[0].recall, 0.5, kTol);
    EXPECT_NEAR(r.map50, 51.0 / 101.0, kTol);
}

TEST(EvalMetrics, WrongClassScoresZeroForBothClasses) {
    // Each object is detected in the right place with the other class.
    const std::vector<GroundTruth> truths{{0, 0, square(0, 0)}, {1, 1, square(0, 0)}};
    const std::vector<Detection> dets{{0, 1, 0.9F, square(0, 0)}, {1, 0, 0.9F, square(0, 0)}};
    const EvalResult r = evaluate(dets, truths, kTwoClasses, {});
    for (const auto& cm : r.classes) {
        EXPECT_EQ(cm.ap50, 0.0) << cm.name;
        EXPECT_EQ(cm.ap50_95, 0.0) << cm.name;
        EXPECT_EQ(cm.precision, 0.0) << cm.name;
        EXPECT_EQ(cm.recall, 0.0) << cm.name;
        EXPECT_EQ(cm.num_det, 1) << cm.name;
    }
    EXPECT_EQ(r.map50, 0.0);
    EXPECT_EQ(r.map50_95, 0.0);
}

TEST(EvalMetrics, PartialOverlapCountsOnlyAtLowThresholds) {
    // IoU 0.58 (58 of 100): a hit at 0.50 and 0.55, a miss at 0.60 .. 0.95.
    // AP is 1 at two thresholds and 0 at eight: ap50_95 = 2 / 10.
    const std::vector<GroundTruth> truths{{0, 0, Box{0, 0, 10, 10}}};
    const std::vector<Detection> near{{0, 0, 0.9F, Box{0, 0, 10, 5.8F}}};
    EvalResult r = evaluate(near, truths, {"a"}, {});
    EXPECT_NEAR(r.classes[0].ap50, 1.0, kTol);
    EXPECT_NEAR(r.classes[0].ap50_95, 0.2, kTol);

    // IoU exactly 0.6 also counts at 0.60 itself (IoU >= t): three of ten.
    const std::vector<Detection> at{{0, 0, 0.9F, Box{0, 0, 10, 6}}};
    r = evaluate(at, truths, {"a"}, {});
    EXPECT_NEAR(r.classes[0].ap50_95, 0.3, kTol);
}

TEST(EvalMetrics, HigherScoredFalsePositiveHalvesPrecision) {
    // One object; a false positive (0.9) outranks the true positive (0.8).
    // Ranked: [FP, TP] -> precision [0, 1/2], recall [0, 1]; envelope [1/2, 1/2].
    // Every recall point 0 .. 1 is first reached at a rank whose envelope is 1/2: AP = 0.5.
    const std::vector<GroundTruth> truths{{0, 0, square(0, 0)}};
    const std::vector<Detection> dets{{0, 0, 0.9F, square(40, 40)}, {0, 0, 0.8F, square(0, 0)}};
    EvalResult r = evaluate(dets, truths, {"a"}, {});
    EXPECT_NEAR(r.classes[0].ap50, 0.5, kTol);
    // Best F1 keeps both: P 1/2, R 1 (keeping only the FP would give F1 0).
    EXPECT_NEAR(r.classes[0].precision, 0.5, kTol);
    EXPECT_NEAR(r.classes[0].recall, 1.0, kTol);

    // Two objects, ranked [TP 0.9, FP 0.8, TP 0.7]:
    // precision [1, 1/2, 2/3], recall [1/2, 1/2, 1], envelope [1, 2/3, 2/3].
    // Points 0 .. 0.50 (51 of them) reach rank 0 -> 1; points 0.51 .. 1 (50) reach rank 2 -> 2/3.
    // AP = (51 + 50 * 2/3) / 101 = 0.834983...
    const std::vector<GroundTruth> two{{0, 0, square(0, 0)}, {0, 0, square(20, 0)}};
    const std::vector<Detection> ranked{
        {0, 0, 0.9F, square(0, 0)}, {0, 0, 0.8F, square(60, 60)}, {0, 0, 0.7F, square(20, 0)}};
    r = evaluate(ranked, two, {"a"}, {});
    EXPECT_NEAR(r.classes[0].ap50, (51.0 + 50.0 * 2.0 / 3.0) / 101.0, kTol);
    // F1 at the three cuts: 2/3, 1/2, 4/5 -> the last: P 2/3, R 1.
    EXPECT_NEAR(r.classes[0].precision, 2.0 / 3.0, kTol);
    EXPECT_NEAR(r.classes[0].recall, 1.0, kTol);
}

TEST(EvalMetrics, DuplicatesAreFalsePositives) {
    // Image 0: one object detected twice (0.9, 0.8); image 1: one object detected once (0.7).
    // Ranked [TP, FP (duplicate), TP]: the same list as above, AP = (51 + 100/3) / 101.
    // Were the duplicate a hit, AP would be 1.
    const std::vector<GroundTruth> truths{{0, 0, square(0, 0)}, {1, 0, square(0, 0)}};
    const std::vector<Detection> dets{
        {0, 0, 0.9F, square(0, 0)}, {0, 0, 0.8F, square(0, 0)}, {1, 0, 0.7F, square(0, 0)}};
    const EvalResult r = evaluate(dets, truths, {"a"}, {});
    EXPECT_NEAR(r.classes[0].ap50, (51.0 + 50.0 * 2.0 / 3.0) / 101.0, kTol);
    EXPECT_EQ(r.classes[0].num_det, 3);
}

TEST(EvalMetrics, DetectionsInOtherImagesDoNotMatch) {
    const std::vector<GroundTruth> truths{{0, 0, square(0, 0)}};
    const std::vector<Detection> dets{{7, 0, 0.9F, square(0, 0)}};
    EXPECT_EQ(evaluate(dets, truths, {"a"}, {}).map50, 0.0);
}

TEST(EvalMetrics, MatchesTheBestOverlappingTruth) {
    // Two overlapping objects (IoU 2/3 with each other). The first detection sits exactly on the
    // second object; taking the first object that clears 0.5 instead would leave the second
    // detection at IoU 2/3 and lose every threshold above 0.65.
    const std::vector<GroundTruth> truths{{0, 0, Box{0, 0, 10, 10}}, {0, 0, Box{2, 0, 12, 10}}};
    const std::vector<Detection> dets{{0, 0, 0.9F, Box{2, 0, 12, 10}},
                                      {0, 0, 0.8F, Box{0, 0, 10, 10}}};
    const EvalResult r = evaluate(dets, truths, {"a"}, {});
    EXPECT_NEAR(r.classes[0].ap50_95, 1.0, kTol);
}

TEST(EvalMetrics, EqualScoresKeepInputOrder) {
    const std::vector<GroundTruth> truths{{0, 0, square(0, 0)}};
    const Detection miss{0, 0, 0.5F, square(40, 40)};
    const Detection hit{0, 0, 0.5F, square(0, 0)};
    // [miss, hit] -> envelope 1/2 everywhere; [hit, miss] -> 1 everywhere.
    EvalResult r = evaluate({miss, hit}, truths, {"a"}, {});
    EXPECT_NEAR(r.classes[0].ap50, 0.5, kTol);
    // One threshold cannot split equal scores: the operating point keeps both either way.
    EXPECT_NEAR(r.classes[0].precision, 0.5, kTol);
    r = evaluate({hit, miss}, truths, {"a"}, {});
    EXPECT_NEAR(r.classes[0].ap50, 1.0, kTol);
    EXPECT_NEAR(r.classes[0].precision, 0.5, kTol);
    EXPECT_NEAR(r.classes[0].recall, 1.0, kTol);
}

TEST(EvalMetrics, ClassWithoutTruthIsLeftOutOfMeans) {
    // Class "b" has only a (false) detection: its numbers are undefined and it does not drag
    // the mean down.
    const std::vector<GroundTruth> truths{{0, 0, square(0, 0)}};
    const std::vector<Detection> dets{{0, 0, 0.9F, square(0, 0)}, {0, 1, 0.9F, square(30, 30)}};
    const EvalResult r = evaluate(dets, truths, kTwoClasses, {});
    EXPECT_TRUE(std::isnan(r.classes[1].ap50));
    EXPECT_TRUE(std::isnan(r.classes[1].ap50_95));
    EXPECT_TRUE(std::isnan(r.classes[1].precision));
    EXPECT_TRUE(std::isnan(r.classes[1].recall));
    EXPECT_EQ(r.classes[1].num_gt, 0);
    EXPECT_EQ(r.classes[1].num_det, 1);
    EXPECT_NEAR(r.map50, 1.0, kTol);
    EXPECT_NEAR(r.precision, 1.0, kTol);
}

TEST(EvalMetrics, NothingToScoreIsNaN) {
    const EvalResult r = evaluate({}, {}, kTwoClasses, {{"all", 0, 2}});
    EXPECT_TRUE(std::isnan(r.map50));
    EXPECT_TRUE(std::isnan(r.layers[0].map50));
}

TEST(EvalMetrics, LayersAverageTheirOwnClasses) {
    // Classes: 0 perfect, 1 missed, 2 perfect, 3 no truth.
    // layer_x = {0, 1} -> mean(1, 0) = 0.5; layer_y = {2, 3} -> only class 2 counts -> 1;
    // overall = mean(1, 0, 1) = 2/3.
    const std::vector<std::string> names{"c0", "c1", "c2", "c3"};
    const std::vector<GroundTruth> truths{
        {0, 0, square(0, 0)}, {0, 1, square(20, 0)}, {0, 2, square(40, 0)}};
    const std::vector<Detection> dets{{0, 0, 0.9F, square(0, 0)}, {0, 2, 0.9F, square(40, 0)}};
    const std::vector<LayerGroup> layers{{"layer_x", 0, 2}, {"layer_y", 2, 2}};
    const EvalResult r = evaluate(dets, truths, names, layers);
    ASSERT_EQ(r.layers.size(), 2U);
    EXPECT_EQ(r.layers[0].name, "layer_x");
    EXPECT_NEAR(r.layers[0].map50, 0.5, kTol);
    EXPECT_NEAR(r.layers[0].map50_95, 0.5, kTol);
    EXPECT_NEAR(r.layers[0].precision, 0.5, kTol);
    EXPECT_NEAR(r.layers[0].recall, 0.5, kTol);
    EXPECT_EQ(r.layers[1].name, "layer_y");
    EXPECT_NEAR(r.layers[1].map50, 1.0, kTol);
    EXPECT_NEAR(r.map50, 2.0 / 3.0, kTol);
}

TEST(EvalMetrics, AveragePrecisionDirectly) {
    EXPECT_TRUE(std::isnan(average_precision({true}, 0)));
    EXPECT_EQ(average_precision({}, 3), 0.0);
    EXPECT_NEAR(average_precision({true, true}, 2), 1.0, kTol);
    // Recall 1/3 first reaches the points 0 .. 0.33 (34 of them).
    EXPECT_NEAR(average_precision({true}, 3), 34.0 / 101.0, kTol);
}

TEST(EvalMetrics, BadClassesThrow) {
    EXPECT_THROW(evaluate({{0, 2, 0.5F, square(0, 0)}}, {}, kTwoClasses, {}),
                 std::invalid_argument);
    EXPECT_THROW(evaluate({}, {{0, -1, square(0, 0)}}, kTwoClasses, {}), std::invalid_argument);
    EXPECT_THROW(evaluate({}, {}, kTwoClasses, {{"too_wide", 1, 2}}), std::invalid_argument);
}

TEST(EvalMetrics, JsonUsesNullForUndefined) {
    const std::vector<GroundTruth> truths{{0, 0, square(0, 0)}};
    const std::vector<Detection> dets{{0, 0, 0.9F, square(0, 0)}};
    const auto j = to_json(evaluate(dets, truths, kTwoClasses, {{"layer_1", 0, 2}}));
    EXPECT_DOUBLE_EQ(j.at("map50").get<double>(), 1.0);
    EXPECT_EQ(j.at("classes").size(), 2U);
    EXPECT_EQ(j.at("classes")[0].at("name"), "a");
    EXPECT_EQ(j.at("classes")[0].at("num_det"), 1);
    EXPECT_TRUE(j.at("classes")[1].at("ap50").is_null());
    EXPECT_EQ(j.at("layers")[0].at("name"), "layer_1");
    EXPECT_DOUBLE_EQ(j.at("layers")[0].at("map50_95").get<double>(), 1.0);
}

}  // namespace
