// Label parsing and dataset opening: error locations, policies and both directory layouts.
#include <gtest/gtest.h>

#include "data_test_util.hpp"
#include "worker/data/dataset.hpp"
#include "worker/data/labels.hpp"

namespace smartcash::data::test {
namespace {

const std::string k_roboflow_yaml =
    "train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\nnc: 17\n"
    "names: ['001', '002', '005', '010', '020', '050', '100', 'l2_001', 'l2_002', 'l2_005',"
    " 'l2_010', 'l2_020', 'l2_050', 'l2_100', 'l3_sign', 'l3_text', 'l3_thread']\n";

/// A one-image Roboflow dataset whose only label file holds `labels`; returns the label path.
fs::path one_image_dataset(const fs::path& dir, const std::string& labels) {
    write_text(dir / "data.yaml", k_roboflow_yaml);
    write_image(dir / "train" / "images" / "a.png", 40, 20);
    const fs::path label = dir / "train" / "labels" / "a.txt";
    write_text(label, labels);
    return label;
}

struct BadLine {
    const char* kind;
    const char* line;
    const char* message_part;
};

void PrintTo(const BadLine& bad, std::ostream* os) { *os << bad.kind; }

class LabelErrors : public ::testing::TestWithParam<BadLine> {};

TEST_P(LabelErrors, FailPolicyNamesFileAndLine) {
    const fs::path dir = scratch_dir();
    // The bad line is line 4: a good line, a blank line, a good line, then it.
    const fs::path label = one_image_dataset(
        dir, std::string("0 0.5 0.5 0.2 0.1\n\n3 0.25 0.75 0.1 0.1\n") + GetParam().line + "\n");
    try {
        open_dataset(dir.string(), BadLabelPolicy::fail);
        FAIL() << "no DataError for " << GetParam().kind;
    } catch (const DataError& e) {
        EXPECT_EQ(fs::path(e.file()), label.lexically_normal());
        EXPECT_EQ(e.line(), 4);
        const std::string what = e.what();
        EXPECT_NE(what.find(label.lexically_normal().string() + ":4: "), std::string::npos) << what;
        EXPECT_NE(what.find(GetParam().message_part), std::string::npos) << what;
    }
}

TEST_P(LabelErrors, SkipPolicyDropsTheLineAndCountsIt) {
    const fs::path dir = scratch_dir();
    one_image_dataset(dir,
                      std::string("0 0.5 0.5 0.2 0.1\n") + GetParam().line + "\n6 0.5 0.5 1 1\n");
    const Dataset ds = open_dataset(dir.string(), BadLabelPolicy::skip);
    EXPECT_EQ(ds.skipped, 1);
    ASSERT_EQ(ds.issues.size(), 1u);
    EXPECT_EQ(ds.issues[0].line, 2);
    ASSERT_EQ(ds.train.labels.size(), 1u);
    ASSERT_EQ(ds.train.labels[0].size(), 2u);
    EXPECT_EQ(ds.train.labels[0][0].cls, 0);
    EXPECT_EQ(ds.train.labels[0][1].cls, 6);
}

INSTANTIATE_TEST_SUITE_P(
    Kinds, LabelErrors,
    ::testing::Values(BadLine{"too_few_fields", "1 0.5 0.5 0.2", "expected 5 fields"},
                      BadLine{"too_many_fields", "1 0.5 0.5 0.2 0.2 0.9", "expected 5 fields"},
                      BadLine{"non_numeric", "1 0.5 abc 0.2 0.2", "not a number"},
                      BadLine{"class_too_big", "21 0.5 0.5 0.2 0.2",
                              "class 21 out of range [0, 17)"},
                      BadLine{"class_negative", "-1 0.5 0.5 0.2 0.2", "out of range"},
                      BadLine{"class_fraction", "1.5 0.5 0.5 0.2 0.2", "not an integer"},
                      BadLine{"cx_above_one", "1 1.2 0.5 0.2 0.2", "cx = 1.2 outside [0, 1]"},
                      BadLine{"cy_negative", "1 0.5 -0.01 0.2 0.2", "cy = -0.01 outside [0, 1]"},
                      BadLine{"h_above_one", "1 0.5 0.5 0.2 1.5", "outside [0, 1]"},
                      BadLine{"zero_width", "1 0.5 0.5 0 0.2", "empty box"},
                      BadLine{"nan", "1 nan 0.5 0.2 0.2", "not a number"}),
    [](const ::testing::TestParamInfo<BadLine>& info) { return std::string(info.param.kind); });

TEST(Labels, ClassOutOfRangeMessageIsExact) {
    std::vector<LabelIssue> issues;
    parse_labels("21 0.5 0.5 0.2 0.2\n", "path/to/x.txt", 17, issues);
    ASSERT_EQ(issues.size(), 1u);
    EXPECT_EQ(format_issue(issues[0]), "path/to/x.txt:1: class 21 out of range [0, 17)");
    EXPECT_STREQ(DataError(issues[0].file, issues[0].line, issues[0].message).what(),
                 "path/to/x.txt:1: class 21 out of range [0, 17)");
}

TEST(Labels, TinySlackAndWhitespaceAreAccepted) {
    std::vector<LabelIssue> issues;
    const auto labels = parse_labels("  16\t1.0000005 -0.0000005   0.5 1\r\n\n\n2 0.1 0.2 0.3 0.4",
                                     "f", 17, issues);
    EXPECT_TRUE(issues.empty()) << (issues.empty() ? "" : format_issue(issues[0]));
    ASSERT_EQ(labels.size(), 2u);
    EXPECT_EQ(labels[0].cls, 16);
    EXPECT_FLOAT_EQ(labels[0].cx, 1.0f);  // clamped into range
    EXPECT_FLOAT_EQ(labels[0].cy, 0.0f);
    EXPECT_FLOAT_EQ(labels[1].h, 0.4f);
}

TEST(Labels, FailReportsTheFirstIssueAndHowManyOthers) {
    const fs::path dir = scratch_dir();
    const fs::path label =
        one_image_dataset(dir, "0 0.5 0.5 0.2\n0 0.5 0.5 0.2 0.2\n30 0 0 1 1\n0 2 0 1 1\n");
    try {
        open_dataset(dir.string(), BadLabelPolicy::fail);
        FAIL() << "no DataError";
    } catch (const DataError& e) {
        EXPECT_EQ(e.line(), 1);
        EXPECT_NE(std::string(e.what()).find("(and 2 more label issues)"), std::string::npos)
            << e.what();
    }
    const Dataset ds = open_dataset(dir.string(), BadLabelPolicy::skip);
    EXPECT_EQ(ds.skipped, 3);
    ASSERT_EQ(ds.issues.size(), 3u);
    EXPECT_EQ(ds.issues[0].line, 1);
    EXPECT_EQ(ds.issues[1].line, 3);
    EXPECT_EQ(ds.issues[2].line, 4);
    EXPECT_EQ(fs::path(ds.issues[2].file), label.lexically_normal());
    ASSERT_EQ(ds.train.labels[0].size(), 1u);
}

TEST(Labels, LabelPathReplacesTheLastImagesComponent) {
    EXPECT_EQ(label_path_for("/d/images/train/images/x.y.jpg"), "/d/images/train/labels/x.y.txt");
    EXPECT_EQ(label_path_for("/d/images/valid/a.PNG"), "/d/labels/valid/a.txt");
    EXPECT_EQ(label_path_for("images/train/b.jpeg"), "labels/train/b.txt");
}

TEST(Dataset, RoboflowLayoutWithParentRelativePaths) {
    const fs::path dir = scratch_dir() / "export";
    write_text(dir / "data.yaml", k_roboflow_yaml);
    write_image(dir / "train" / "images" / "b.jpg", 40, 20);
    write_image(dir / "train" / "images" / "a.png", 40, 20);
    write_text(dir / "train" / "images" / "notes.txt", "not an image");
    write_text(dir / "train" / "labels" / "a.txt", "7 0.5 0.5 0.25 0.5\n");
    // b.jpg has no label file: an image with no objects.
    write_image(dir / "valid" / "images" / "v.bmp", 20, 20);
    write_text(dir / "valid" / "labels" / "v.txt", "16 0.1 0.2 0.05 0.3\n");

    for (const fs::path& path : {dir, dir / "data.yaml"}) {
        const Dataset ds = open_dataset(path.string(), BadLabelPolicy::fail);
        ASSERT_EQ(ds.names.size(), 17u);
        EXPECT_EQ(ds.names[16], "l3_thread");
        ASSERT_EQ(ds.train.images.size(), 2u);
        EXPECT_EQ(fs::path(ds.train.images[0]).filename(), "a.png");  // sorted by name
        EXPECT_EQ(fs::path(ds.train.images[1]).filename(), "b.jpg");
        ASSERT_EQ(ds.train.labels.size(), 2u);
        ASSERT_EQ(ds.train.labels[0].size(), 1u);
        EXPECT_EQ(ds.train.labels[0][0].cls, 7);
        EXPECT_FLOAT_EQ(ds.train.labels[0][0].w, 0.25f);
        EXPECT_TRUE(ds.train.labels[1].empty());
        ASSERT_EQ(ds.valid.images.size(), 1u);
        EXPECT_EQ(ds.valid.labels[0][0].cls, 16);
        EXPECT_TRUE(ds.test.empty());  // test/images does not exist
    }
}

TEST(Dataset, RoboflowPathsThatResolveLiterallyWin) {
    // data.yaml one level down, folders beside its parent: "../train/images" is literal here.
    const fs::path dir = scratch_dir();
    write_text(dir / "meta" / "data.yaml", k_roboflow_yaml);
    write_image(dir / "train" / "images" / "x.png", 10, 10);
    const Dataset ds = open_dataset((dir / "meta" / "data.yaml").string(), BadLabelPolicy::fail);
    ASSERT_EQ(ds.train.images.size(), 1u);
    EXPECT_EQ(fs::path(ds.train.images[0]),
              (dir / "train" / "images" / "x.png").lexically_normal());
}

TEST(Dataset, PlainLayoutWithValFolder) {
    const fs::path dir = scratch_dir();
    write_image(dir / "images" / "train" / "t1.jpg", 30, 30);
    write_image(dir / "images" / "train" / "t0.jpg", 30, 30);
    write_text(dir / "labels" / "train" / "t0.txt", "3 0.5 0.5 0.5 0.5\n14 0.1 0.1 0.1 0.1\n");
    write_image(dir / "images" / "val" / "v0.png", 30, 30);
    write_text(dir / "labels" / "val" / "v0.txt", "4 0.5 0.5 0.5 0.5\n");
    write_image(dir / "images" / "test" / "s0.png", 30, 30);

    const Dataset ds = open_dataset(dir.string(), BadLabelPolicy::fail);
    EXPECT_EQ(ds.names, default_class_names());
    ASSERT_EQ(ds.train.size(), 2u);
    EXPECT_EQ(fs::path(ds.train.images[0]).filename(), "t0.jpg");
    ASSERT_EQ(ds.train.labels[0].size(), 2u);
    EXPECT_EQ(ds.train.labels[0][1].cls, 14);
    EXPECT_TRUE(ds.train.labels[1].empty());
    ASSERT_EQ(ds.valid.size(), 1u);
    EXPECT_EQ(ds.valid.labels[0][0].cls, 4);
    EXPECT_EQ(ds.test.size(), 1u);
}

TEST(Dataset, WrongClassCountNamesDataYaml) {
    const fs::path dir = scratch_dir();
    write_text(dir / "data.yaml", "train: train/images\nnc: 3\nnames: ['a', 'b', 'c']\n");
    write_image(dir / "train" / "images" / "x.png", 10, 10);
    try {
        open_dataset(dir.string(), BadLabelPolicy::fail);
        FAIL() << "no DataError";
    } catch (const DataError& e) {
        EXPECT_EQ(fs::path(e.file()).filename(), "data.yaml");
        EXPECT_EQ(e.line(), 2);
        EXPECT_NE(std::string(e.what()).find("nc is 3"), std::string::npos) << e.what();
    }
    // Three classes are fine for a three-class model.
    EXPECT_EQ(open_dataset(dir.string(), BadLabelPolicy::fail, 3).names.size(), 3u);
}

TEST(Dataset, NamesMustMatchNc) {
    const fs::path dir = scratch_dir();
    write_text(dir / "data.yaml", "train: train/images\nnc: 17\nnames: ['a', 'b']\n");
    write_image(dir / "train" / "images" / "x.png", 10, 10);
    EXPECT_THROW(open_dataset(dir.string(), BadLabelPolicy::fail), DataError);
}

TEST(Dataset, EmptyTrainSplitIsAnError) {
    const fs::path dir = scratch_dir();
    write_text(dir / "data.yaml", k_roboflow_yaml);
    fs::create_directories(dir / "train" / "images");
    try {
        open_dataset(dir.string(), BadLabelPolicy::fail);
        FAIL() << "no DataError";
    } catch (const DataError& e) {
        EXPECT_NE(std::string(e.what()).find("train split has no images"), std::string::npos);
    }
}

TEST(Dataset, MissingTrainPathNamesTheKeyMissingValIsEmpty) {
    const fs::path dir = scratch_dir();
    write_image(dir / "train" / "images" / "x.png", 10, 10);
    const std::string names = k_roboflow_yaml.substr(k_roboflow_yaml.find("nc: 17"));
    write_text(dir / "data.yaml", "val: ../valid/images\ntrain: ../nowhere/images\n" + names);
    try {
        open_dataset(dir.string(), BadLabelPolicy::fail);
        FAIL() << "no DataError";
    } catch (const DataError& e) {
        EXPECT_EQ(e.line(), 2);
        EXPECT_NE(std::string(e.what()).find("train path '../nowhere/images' not found"),
                  std::string::npos)
            << e.what();
    }
    write_text(dir / "data.yaml", "val: ../valid/images\ntrain: ../train/images\n" + names);
    const Dataset ds = open_dataset(dir.string(), BadLabelPolicy::fail);
    EXPECT_EQ(ds.train.size(), 1u);
    EXPECT_TRUE(ds.valid.empty());
}

TEST(Dataset, NotADatasetDirectory) {
    const fs::path dir = scratch_dir();
    EXPECT_THROW(open_dataset(dir.string(), BadLabelPolicy::fail), DataError);
    EXPECT_THROW(open_dataset((dir / "missing").string(), BadLabelPolicy::fail), DataError);
}

}  // namespace
}  // namespace smartcash::data::test
