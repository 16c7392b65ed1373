// Class names of an export mapped to the model's classes by name, not by position.
#include <gtest/gtest.h>

#include <algorithm>

#include "data_test_util.hpp"
#include "worker/data/class_names.hpp"
#include "worker/data/dataset.hpp"
#include "worker/data/labels.hpp"

namespace smartcash::data::test {
namespace {

std::string names_yaml(const std::vector<std::string>& names) {
    std::string text =
        "train: train/images\nval: valid/images\nnc: " + std::to_string(names.size()) +
        "\nnames: [";
    for (size_t i = 0; i < names.size(); ++i) text += (i ? ", '" : "'") + names[i] + "'";
    return text + "]\n";
}

TEST(ClassNames, ExportOrderIsTranslatedToTheModelsClasses) {
    // The export lists the security features first and the denominations reversed.
    std::vector<std::string> names = {"l3_thread", "l3_text", "l3_sign"};
    for (int i = 6; i >= 0; --i) names.push_back(default_class_names()[static_cast<size_t>(i)]);
    for (int i = 7; i < 14; ++i) names.push_back(default_class_names()[static_cast<size_t>(i)]);
    const fs::path dir = scratch_dir();
    write_text(dir / "data.yaml", names_yaml(names));
    write_image(dir / "train" / "images" / "a.png", 40, 20);
    // Export ids: 0 = l3_thread, 3 = '100', 9 = '001', 10 = 'l2_001'.
    write_text(dir / "train" / "labels" / "a.txt",
               "0 0.5 0.5 0.1 0.1\n3 0.5 0.5 0.2 0.2\n9 0.5 0.5 0.3 0.3\n10 0.5 0.5 0.4 0.4\n");
    write_image(dir / "valid" / "images" / "v.png", 20, 20);
    write_text(dir / "valid" / "labels" / "v.txt", "2 0.5 0.5 0.1 0.1\n");

    const Dataset ds = open_dataset(dir.string(), BadLabelPolicy::fail);
    EXPECT_EQ(ds.names, default_class_names());
    EXPECT_EQ(ds.export_names, names);
    const auto& labels = ds.train.labels.at(0);
    ASSERT_EQ(labels.size(), 4u);
    EXPECT_EQ(ds.names[static_cast<size_t>(labels[0].cls)], "l3_thread");
    EXPECT_EQ(labels[0].cls, 16);
    EXPECT_EQ(labels[1].cls, 6);  // '100'
    EXPECT_EQ(labels[2].cls, 0);  // '001'
    EXPECT_EQ(labels[3].cls, 7);  // 'l2_001'
    EXPECT_FLOAT_EQ(labels[3].w, 0.4f);
    EXPECT_EQ(ds.valid.labels.at(0).at(0).cls, 14);  // l3_sign
}

TEST(ClassNames, TheModelsOwnOrderNeedsNoTranslation) {
    EXPECT_TRUE(is_identity(map_class_names(default_class_names(), default_class_names(), "d", 1)));
}

TEST(ClassNames, UnknownMissingAndRepeatedNamesAreDataErrorsListingTheExport) {
    auto expect_error = [](std::vector<std::string> names, const std::string& part) {
        const fs::path dir = scratch_dir();
        write_text(dir / "data.yaml", names_yaml(names));
        write_image(dir / "train" / "images" / "a.png", 40, 20);
        try {
            open_dataset(dir.string(), BadLabelPolicy::fail);
            ADD_FAILURE() << "no DataError for " << part;
        } catch (const DataError& e) {
            const std::string what = e.what();
            EXPECT_EQ(fs::path(e.file()).filename(), "data.yaml");
            EXPECT_EQ(e.line(), 4) << "the names line";
            EXPECT_NE(what.find(part), std::string::npos) << what;
            // The export's names are listed, so the user sees what to fix.
            EXPECT_NE(what.find("The export has ['" + names[0] + "'"), std::string::npos) << what;
        }
    };
    auto names = default_class_names();
    names[3] = "Rp10000";
    expect_error(names, "class 3 'Rp10000' is not a SmartCash class");
    expect_error(names, "'010' is missing");
    names = default_class_names();
    names[16] = "l3_sign";
    expect_error(names, "class 16 'l3_sign' repeats class 14");
    expect_error(names, "'l3_thread' is missing");
}

}  // namespace
}  // namespace smartcash::data::test
