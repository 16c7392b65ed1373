// Letterbox geometry, sample loading and seeded augmentation.
#include <gtest/gtest.h>

#include <cmath>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "data_test_util.hpp"
#include "worker/data/sample.hpp"

namespace smartcash::data::test {
namespace {

AugmentConfig no_augment() {
    AugmentConfig a;
    a.flip = a.hsv_h = a.hsv_s = a.hsv_v = a.degrees = a.translate = a.scale = 0.0;
    return a;
}

bool same_image(const cv::Mat& a, const cv::Mat& b) {
    return a.size() == b.size() && a.type() == b.type() && cv::norm(a, b, cv::NORM_INF) == 0;
}

/// A textured 200x100 image with a red block, and its split entry with a box around the block.
Split textured_split(const fs::path& dir) {
    cv::Mat image(100, 200, CV_8UC3);
    cv::randu(image, cv::Scalar::all(0), cv::Scalar::all(255));
    cv::rectangle(image, cv::Rect(40, 20, 40, 20), cv::Scalar(0, 0, 255), cv::FILLED);
    const fs::path path = dir / "images" / "x.png";
    fs::create_directories(path.parent_path());
    EXPECT_TRUE(cv::imwrite(path.string(), image));
    Split split;
    split.images.push_back(path.string());
    // Block: x 40..80, y 20..40 of 200x100.
    split.labels.push_back({{3, 0.3f, 0.3f, 0.2f, 0.2f}, {14, 0.8f, 0.7f, 0.1f, 0.3f}});
    return split;
}

TEST(Letterbox, WideImageIntoSquare) {
    cv::Mat wide(100, 200, CV_8UC3, cv::Scalar(10, 20, 30));
    float scale = 0;
    int pad_x = -1, pad_y = -1;
    const cv::Mat out = letterbox(wide, 64, &scale, &pad_x, &pad_y);
    EXPECT_FLOAT_EQ(scale, 0.32f);
    EXPECT_EQ(pad_x, 0);
    EXPECT_EQ(pad_y, 16);
    ASSERT_EQ(out.size(), cv::Size(64, 64));
    ASSERT_EQ(out.type(), CV_8UC3);
    EXPECT_EQ(out.at<cv::Vec3b>(0, 0), cv::Vec3b(114, 114, 114));
    EXPECT_EQ(out.at<cv::Vec3b>(15, 63), cv::Vec3b(114, 114, 114));
    EXPECT_EQ(out.at<cv::Vec3b>(16, 0), cv::Vec3b(10, 20, 30));
    EXPECT_EQ(out.at<cv::Vec3b>(47, 63), cv::Vec3b(10, 20, 30));
    EXPECT_EQ(out.at<cv::Vec3b>(48, 32), cv::Vec3b(114, 114, 114));
}

TEST(Letterbox, TallAndEnlargedImages) {
    float scale = 0;
    int pad_x = -1, pad_y = -1;
    cv::Mat tall(200, 100, CV_8UC3, cv::Scalar(1, 2, 3));
    letterbox(tall, 64, &scale, &pad_x, &pad_y);
    EXPECT_FLOAT_EQ(scale, 0.32f);
    EXPECT_EQ(pad_x, 16);
    EXPECT_EQ(pad_y, 0);

    cv::Mat small(10, 20, CV_8UC3, cv::Scalar(1, 2, 3));
    const cv::Mat out = letterbox(small, 64, &scale, &pad_x, &pad_y);
    EXPECT_FLOAT_EQ(scale, 3.2f);
    EXPECT_EQ(pad_x, 0);
    EXPECT_EQ(pad_y, 16);
    EXPECT_EQ(out.at<cv::Vec3b>(32, 32), cv::Vec3b(1, 2, 3));
}

TEST(Sample, WithoutAugmentationMapsBoxesThroughTheLetterbox) {
    const Split split = textured_split(scratch_dir());
    const Sample s = load_sample(split, 0, 64, nullptr, 0);
    ASSERT_EQ(s.image.size(), cv::Size(64, 64));
    ASSERT_EQ(s.image.type(), CV_8UC3);
    ASSERT_EQ(s.labels.size(), 2u);
    // 200x100 -> 64x32 at y offset 16.
    EXPECT_EQ(s.labels[0].cls, 3);
    EXPECT_NEAR(s.labels[0].cx, 0.3f, 1e-6);
    EXPECT_NEAR(s.labels[0].cy, (0.3f * 32 + 16) / 64, 1e-6);
    EXPECT_NEAR(s.labels[0].w, 0.2f, 1e-6);
    EXPECT_NEAR(s.labels[0].h, 0.2f * 32 / 64, 1e-6);
    EXPECT_NEAR(s.labels[1].cy, (0.7f * 32 + 16) / 64, 1e-6);
    EXPECT_NEAR(s.labels[1].h, 0.3f * 32 / 64, 1e-6);
    // The red block (BGR 0,0,255) comes out RGB: red in channel 0. Its centre, 60,30 in the
    // original, lands at 19.2,25.6.
    const cv::Vec3b centre = s.image.at<cv::Vec3b>(25, 19);
    EXPECT_EQ(centre, cv::Vec3b(255, 0, 0));
    EXPECT_EQ(s.image.at<cv::Vec3b>(2, 2), cv::Vec3b(114, 114, 114));
    // Evaluation loading ignores the seed.
    EXPECT_TRUE(same_image(s.image, load_sample(split, 0, 64, nullptr, 99).image));
}

TEST(Sample, AugmentationIsAFunctionOfTheSeed) {
    const Split split = textured_split(scratch_dir());
    const AugmentConfig augment;  // defaults: every kind on
    const Sample a = load_sample(split, 0, 96, &augment, 1234);
    const Sample b = load_sample(split, 0, 96, &augment, 1234);
    EXPECT_TRUE(same_image(a.image, b.image));
    ASSERT_EQ(a.labels.size(), b.labels.size());
    for (std::size_t i = 0; i < a.labels.size(); ++i) {
        EXPECT_EQ(a.labels[i].cls, b.labels[i].cls);
        EXPECT_EQ(a.labels[i].cx, b.labels[i].cx);
        EXPECT_EQ(a.labels[i].h, b.labels[i].h);
    }
    const Sample c = load_sample(split, 0, 96, &augment, 1235);
    EXPECT_FALSE(same_image(a.image, c.image));
}

TEST(Sample, AugmentedBoxesStayInsideTheImage) {
    const Split split = textured_split(scratch_dir());
    AugmentConfig strong;
    strong.degrees = 30;
    strong.translate = 0.3;
    strong.scale = 0.5;
    int boxes = 0;
    bool changed = false;
    for (std::uint64_t seed = 0; seed < 60; ++seed) {
        const Sample s = load_sample(split, 0, 64, &strong, seed);
        ASSERT_EQ(s.image.size(), cv::Size(64, 64));
        for (const Label& l : s.labels) {
            ++boxes;
            EXPECT_GE(l.cx - l.w / 2, -1e-5f);
            EXPECT_LE(l.cx + l.w / 2, 1 + 1e-5f);
            EXPECT_GE(l.cy - l.h / 2, -1e-5f);
            EXPECT_LE(l.cy + l.h / 2, 1 + 1e-5f);
            EXPECT_GE(l.w * 64, 2.0f - 1e-3f);
            EXPECT_GE(l.h * 64, 2.0f - 1e-3f);
            if (std::abs(l.cx - 0.3f) > 0.02f && l.cls == 3) changed = true;
        }
    }
    EXPECT_GT(boxes, 60);  // most boxes survive
    EXPECT_TRUE(changed);  // and they do move
}

TEST(Sample, FlipOnlyMirrorsImageAndBoxes) {
    const Split split = textured_split(scratch_dir());
    AugmentConfig flip = no_augment();
    flip.flip = 1.0;
    const Sample plain = load_sample(split, 0, 64, nullptr, 0);
    const Sample flipped = load_sample(split, 0, 64, &flip, 5);
    ASSERT_EQ(flipped.labels.size(), plain.labels.size());
    for (std::size_t i = 0; i < plain.labels.size(); ++i) {
        EXPECT_EQ(flipped.labels[i].cls, plain.labels[i].cls);
        EXPECT_NEAR(flipped.labels[i].cx, 1.0f - plain.labels[i].cx, 1e-6);
        EXPECT_EQ(flipped.labels[i].cy, plain.labels[i].cy);
        EXPECT_EQ(flipped.labels[i].w, plain.labels[i].w);
        EXPECT_EQ(flipped.labels[i].h, plain.labels[i].h);
    }
    cv::Mat mirrored;
    cv::flip(plain.image, mirrored, 1);
    EXPECT_TRUE(same_image(flipped.image, mirrored));

    // All off: the sample equals the evaluation one.
    const AugmentConfig off = no_augment();
    EXPECT_TRUE(same_image(load_sample(split, 0, 64, &off, 5).image, plain.image));
}

TEST(Sample, ThreadCountDoesNotChangeTheSample) {
    const Split split = textured_split(scratch_dir());
    const AugmentConfig augment;
    set_image_threads(1);
    EXPECT_EQ(cv::getNumThreads(), 1);
    const Sample one = load_sample(split, 0, 96, &augment, 77);
    set_image_threads(4);
    const Sample four = load_sample(split, 0, 96, &augment, 77);
    EXPECT_TRUE(same_image(one.image, four.image));
}

TEST(Sample, UndecodableImageNamesTheFile) {
    const fs::path dir = scratch_dir();
    const fs::path bad = dir / "images" / "broken.jpg";
    write_text(bad, "\xff\xd8\xff this is not a jpeg");
    Split split;
    split.images.push_back(bad.string());
    split.labels.emplace_back();
    try {
        load_sample(split, 0, 64, nullptr, 0);
        FAIL() << "no DataError";
    } catch (const DataError& e) {
        EXPECT_EQ(e.file(), bad.string());
        EXPECT_EQ(e.line(), 0);
        EXPECT_EQ(std::string(e.what()), bad.string() + ": cannot decode image");
    }
    EXPECT_THROW(load_sample(split, 1, 64, nullptr, 0), std::out_of_range);
}

}  // namespace
}  // namespace smartcash::data::test
