// Augmented boxes follow the content: a solid object is drawn in an image, the training
// augmentation runs with many seeds, and the object is found again in each augmented image by its
// colour; its transformed label must cover the same place.
#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "data_test_util.hpp"
#include "worker/data/sample.hpp"

namespace smartcash::data::test {
namespace {

constexpr int kSize = 160;

/// A 240x150 black image (black stays black under any HSV gain) with a green 70x36 block off
/// centre, towards the top right; its label is the block's box.
Split green_block_split(const fs::path& dir) {
    cv::Mat image(150, 240, CV_8UC3, cv::Scalar(0, 0, 0));
    const cv::Rect block(140, 24, 70, 36);  // x 140..210, y 24..60
    cv::rectangle(image, block, cv::Scalar(0, 255, 0), cv::FILLED);
    const fs::path path = dir / "images" / "block.png";
    fs::create_directories(path.parent_path());
    EXPECT_TRUE(cv::imwrite(path.string(), image));
    Split split;
    split.images.push_back(path.string());
    split.labels.push_back(
        {{4, (140.0f + 35.0f) / 240.0f, (24.0f + 18.0f) / 150.0f, 70.0f / 240.0f, 36.0f / 150.0f}});
    return split;
}

/// The bounding box, in pixels, of the clearly green pixels of an RGB image; empty when none.
cv::Rect green_extent(const cv::Mat& rgb) {
    cv::Mat mask(rgb.size(), CV_8U, cv::Scalar(0));
    for (int y = 0; y < rgb.rows; ++y) {
        for (int x = 0; x < rgb.cols; ++x) {
            const cv::Vec3b p = rgb.at<cv::Vec3b>(y, x);
            if (p[1] > 60 && p[1] > std::max(p[0], p[2]) + 40) mask.at<uchar>(y, x) = 255;
        }
    }
    return cv::boundingRect(mask);
}

double iou(const cv::Rect2d& a, const cv::Rect2d& b) {
    const double inter = (a & b).area();
    return inter / (a.area() + b.area() - inter);
}

/// Finds the block in samples made with `augment` for seeds 0..seeds-1 and compares.
void check_boxes_follow(const AugmentConfig& augment, int seeds, int* flips) {
    const Split split = green_block_split(scratch_dir());
    int kept = 0;
    for (int seed = 0; seed < seeds; ++seed) {
        SCOPED_TRACE("seed " + std::to_string(seed));
        const Sample s = load_sample(split, 0, kSize, &augment, static_cast<std::uint64_t>(seed));
        const cv::Rect found = green_extent(s.image);
        if (s.labels.empty()) {
            // Dropped only when mostly pushed out of the image.
            EXPECT_LT(found.area(), 0.3 * 70 * 36 * (kSize / 240.0) * (kSize / 240.0));
            continue;
        }
        ASSERT_EQ(s.labels.size(), 1u);
        ++kept;
        const Label& l = s.labels[0];
        EXPECT_EQ(l.cls, 4);
        const cv::Rect2d label((l.cx - l.w / 2) * kSize, (l.cy - l.h / 2) * kSize, l.w * kSize,
                               l.h * kSize);
        ASSERT_GT(found.area(), 0) << "block not visible";
        const double overlap = iou(label, cv::Rect2d(found));
        EXPECT_GT(overlap, 0.7) << "label " << label << " but the block is at " << found;
        if (flips && l.cx < 0.5f) ++*flips;  // the block started in the right half
    }
    EXPECT_GT(kept, seeds * 3 / 4);
}

TEST(AugmentBoxes, DefaultAugmentationFollowsTheObject) {
    int flips = 0;
    check_boxes_follow(AugmentConfig{}, 24, &flips);
    EXPECT_GT(flips, 0) << "some seeds should flip";
    EXPECT_LT(flips, 24) << "some seeds should not flip";
}

TEST(AugmentBoxes, StrongGeometryFollowsTheObject) {
    AugmentConfig strong;
    strong.degrees = 25;
    strong.translate = 0.2;
    strong.scale = 0.4;
    strong.hsv_h = strong.hsv_s = strong.hsv_v = 0.0;
    check_boxes_follow(strong, 24, nullptr);
}

}  // namespace
}  // namespace smartcash::data::test
