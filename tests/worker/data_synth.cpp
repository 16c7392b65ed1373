// The synthetic dataset: determinism, validity and the keep/regenerate rules.
#include <gtest/gtest.h>

#include <map>
#include <opencv2/imgcodecs.hpp>

#include "data_test_util.hpp"
#include "worker/data/dataset.hpp"
#include "worker/data/sample.hpp"
#include "worker/data/synth.hpp"

namespace smartcash::data::test {
namespace {

/// Every file under `dir` (hidden ones included) by relative path, with its bytes.
std::map<std::string, std::string> tree(const fs::path& dir) {
    std::map<std::string, std::string> files;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
        if (entry.is_regular_file())
            files[fs::relative(entry.path(), dir).string()] = read_bytes(entry.path());
    return files;
}

SynthOptions small(const fs::path& out, std::uint64_t seed) {
    SynthOptions o;
    o.out = out.string();
    o.images = 30;
    o.size = 160;
    o.seed = seed;
    return o;
}

TEST(Synth, SameSeedSameBytesOtherSeedOtherBytes) {
    const fs::path dir = scratch_dir();
    synthesize(small(dir / "a", 11));
    synthesize(small(dir / "b", 11));
    synthesize(small(dir / "c", 12));
    const auto a = tree(dir / "a"), b = tree(dir / "b"), c = tree(dir / "c");
    ASSERT_EQ(a.size(), 2u * 30 + 2);  // images, labels, data.yaml, marker
    EXPECT_TRUE(a == b);
    ASSERT_EQ(a.size(), c.size());
    int same_images = 0;
    for (const auto& [path, bytes] : a)
        if (path.find("/images/") != std::string::npos && c.at(path) == bytes) ++same_images;
    EXPECT_EQ(same_images, 0);
    EXPECT_FALSE(fs::exists(dir / "a.partial"));
}

TEST(Synth, LabelsAreValidAndEveryClassIsInTrain) {
    const fs::path dir = scratch_dir() / "ds";
    synthesize(small(dir, 7));
    const Dataset ds = open_dataset(dir.string(), BadLabelPolicy::fail);
    EXPECT_EQ(ds.skipped, 0);
    EXPECT_EQ(ds.train.size(), 24u);
    EXPECT_EQ(ds.valid.size(), 3u);
    EXPECT_EQ(ds.test.size(), 3u);
    EXPECT_EQ(ds.names, default_class_names());
    std::vector<int> count(17, 0);
    for (std::size_t i = 0; i < ds.train.size(); ++i) {
        int notes = 0;
        for (const Label& l : ds.train.labels[i]) {
            ++count[l.cls];
            notes += l.cls < 7;
            // Every box at least 2 px and inside the image.
            EXPECT_GE(l.w * 160, 2.0f);
            EXPECT_GE(l.h * 160, 2.0f);
            EXPECT_GE(l.cx - l.w / 2, -1e-5f);
            EXPECT_LE(l.cx + l.w / 2, 1 + 1e-5f);
            EXPECT_GE(l.cy - l.h / 2, -1e-5f);
            EXPECT_LE(l.cy + l.h / 2, 1 + 1e-5f);
        }
        EXPECT_GE(notes, 1);
        EXPECT_LE(notes, 2);
        const cv::Mat image = cv::imread(ds.train.images[i]);
        ASSERT_EQ(image.size(), cv::Size(160, 160)) << ds.train.images[i];
    }
    for (int cls = 0; cls < 17; ++cls) EXPECT_GT(count[cls], 0) << ds.names[cls];
    // A note's numeral and security features sit inside it.
    const auto& first = ds.train.labels[0];
    for (const Label& l : first) {
        bool inside_a_note = false;
        for (const Label& note : first)
            if (note.cls < 7 && std::abs(l.cx - note.cx) <= note.w / 2 &&
                std::abs(l.cy - note.cy) <= note.h / 2)
                inside_a_note = true;
        EXPECT_TRUE(inside_a_note) << "class " << l.cls;
    }
}

TEST(Synth, CompleteOutputIsKeptIncompleteIsRegenerated) {
    const fs::path dir = scratch_dir() / "ds";
    const SynthOptions options = small(dir, 3);
    synthesize(options);
    EXPECT_TRUE(synthetic_complete(options));
    const auto first = tree(dir);
    const fs::path image = dir / "train" / "images" / "synth_00000.jpg";
    const auto stamp = fs::last_write_time(image);

    // Complete: left as is (the file is not rewritten).
    write_text(dir / "train" / "labels" / "synth_00000.txt", "tampered\n");
    synthesize(options);
    EXPECT_EQ(fs::last_write_time(image), stamp);
    EXPECT_EQ(read_bytes(dir / "train" / "labels" / "synth_00000.txt"), "tampered\n");

    // Incomplete (no marker): regenerated to the same bytes.
    fs::remove(dir / ".synth-complete");
    fs::remove(dir / "valid" / "images" / "synth_00024.jpg");
    EXPECT_FALSE(synthetic_complete(options));
    synthesize(options);
    EXPECT_TRUE(tree(dir) == first);

    // Other options: regenerated.
    SynthOptions bigger = options;
    bigger.images = 10;
    EXPECT_FALSE(synthetic_complete(bigger));
    synthesize(bigger);
    EXPECT_TRUE(synthetic_complete(bigger));
    EXPECT_EQ(tree(dir).size(), 2u * 10 + 2);
}

TEST(Synth, RefusesToOverwriteOtherData) {
    const fs::path dir = scratch_dir() / "mine";
    write_text(dir / "thesis.tex", "precious");
    EXPECT_THROW(synthesize(small(dir, 1)), DataError);
    EXPECT_EQ(read_bytes(dir / "thesis.tex"), "precious");
    SynthOptions bad = small(scratch_dir() / "x", 1);
    bad.images = 0;
    EXPECT_THROW(synthesize(bad), DataError);
}

TEST(Synth, SamplesLoadAndAugment) {
    const fs::path dir = scratch_dir() / "ds";
    synthesize(small(dir, 5));
    const Dataset ds = open_dataset((dir / "data.yaml").string(), BadLabelPolicy::fail);
    const AugmentConfig augment;
    for (std::size_t i = 0; i < 4; ++i) {
        const Sample s = load_sample(ds.train, i, 128, &augment, i);
        EXPECT_EQ(s.image.size(), cv::Size(128, 128));
        EXPECT_FALSE(s.labels.empty());
    }
}

}  // namespace
}  // namespace smartcash::data::test
