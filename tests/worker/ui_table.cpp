// Table layout and the summaries built on it.

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "worker/ui/summary.hpp"
#include "worker/ui/table.hpp"

namespace {

using smartcash::ui::render_table;
using smartcash::ui::TableStyle;

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        lines.push_back(line);
    }
    return lines;
}

std::size_t code_points(const std::string& text) {
    std::size_t n = 0;
    for (const char c : text) {
        n += (static_cast<unsigned char>(c) & 0xC0U) != 0x80U ? 1 : 0;
    }
    return n;
}

TEST(UiTable, AsciiAlignsTextLeftAndNumbersRight) {
    const std::string table =
        render_table({"name", "value"}, {{"a", "1.5"}, {"long name", "10.25"}}, TableStyle::ascii);
    EXPECT_EQ(table,
              "+-----------+-------+\n"
              "| name      | value |\n"
              "+-----------+-------+\n"
              "| a         |   1.5 |\n"
              "| long name | 10.25 |\n"
              "+-----------+-------+\n");
}

TEST(UiTable, UnicodeLinesHaveEqualWidth) {
    const std::string table = render_table({"class", "AP"}, {{"001", "0.912"}, {"thread", "-"}});
    const auto lines = lines_of(table);
    ASSERT_EQ(lines.size(), 6U);
    EXPECT_EQ(lines.front().rfind("┌", 0), 0U);
    EXPECT_EQ(lines.back().rfind("└", 0), 0U);
    for (const auto& line : lines) {
        EXPECT_EQ(code_points(line), code_points(lines.front())) << line;
    }
    // "-" counts as a missing number, so the AP column is right-aligned.
    EXPECT_NE(table.find("│     - │"), std::string::npos) << table;
}

TEST(UiTable, EmptyRowIsARuleAndShortRowsArePadded) {
    const std::string table =
        render_table({"a", "b", "c"}, {{"x", "1", "2"}, {}, {"all"}}, TableStyle::ascii);
    const auto lines = lines_of(table);
    ASSERT_EQ(lines.size(), 7U);
    EXPECT_EQ(lines[4], lines[2]);  // the separator is the same rule as under the header
    EXPECT_EQ(lines[5], "| all |   |   |");
}

TEST(UiTable, MixedColumnStaysLeftAligned) {
    const std::string table = render_table({"k"}, {{"12"}, {"sign"}, {"1"}}, TableStyle::ascii);
    EXPECT_NE(table.find("| 1    |"), std::string::npos) << table;
}

TEST(UiTable, FormatMetric) {
    EXPECT_EQ(smartcash::ui::format_metric(0.81234), "0.812");
    EXPECT_EQ(smartcash::ui::format_metric(std::numeric_limits<double>::quiet_NaN()), "-");
}

smartcash::eval::EvalResult sample_result() {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    smartcash::eval::EvalResult r{};
    r.map50 = 0.75;
    r.map50_95 = 0.5;
    r.precision = 0.8;
    r.recall = 0.7;
    r.classes = {{0, "001", 4, 5, 0.9, 0.6, 0.8, 0.75},
                 {1, "002", 2, 1, 0.6, 0.4, 0.8, 0.65},
                 {2, "thread", 0, 3, nan, nan, nan, nan}};
    r.layers = {{"layer_1", 0.75, 0.5, 0.8, 0.7}, {"layer_3", nan, nan, nan, nan}};
    return r;
}

TEST(UiSummary, EvalTableHasClassesLayersAndTotals) {
    const std::string table = smartcash::ui::format_eval_table(sample_result(), TableStyle::ascii);
    const auto lines = lines_of(table);
    // rule, header, rule, 3 classes, rule, 2 layers, rule, all, rule
    ASSERT_EQ(lines.size(), 12U) << table;
    EXPECT_EQ(lines[1], "| class   | GT | det |     P |     R | AP@0.5 | AP@0.5:0.95 |");
    EXPECT_EQ(lines[3], "| 001     |  4 |   5 | 0.800 | 0.750 |  0.900 |       0.600 |");
    EXPECT_EQ(lines[5], "| thread  |  0 |   3 |     - |     - |      - |           - |");
    EXPECT_EQ(lines[7], "| layer_1 |    |     | 0.800 | 0.700 |  0.750 |       0.500 |");
    EXPECT_EQ(lines[10], "| all     |  6 |   9 | 0.800 | 0.700 |  0.750 |       0.500 |");
}

TEST(UiSummary, EpochSummaryWithValidation) {
    smartcash::ui::EpochSummary s;
    s.epoch = 3;
    s.epochs = 50;
    s.phase = 2;
    s.loss = 1.5;
    s.loss_box = 0.5;
    s.loss_obj = 0.75;
    s.loss_cls = 0.25;
    s.validation = sample_result();
    s.seconds = 83.0;
    s.peak_rss = 3ULL << 30;
    s.tier = "cpu";
    s.best = true;
    const std::string text = smartcash::ui::format_epoch_summary(s, TableStyle::ascii);
    EXPECT_EQ(lines_of(text).front(),
              "epoch 3/50  phase 2  train loss 1.5000 (box 0.5000  obj 0.7500  cls 0.2500)");
    EXPECT_NE(text.find("| val     | mAP@0.5 | mAP@0.5:0.95 |     P |     R |"), std::string::npos)
        << text;
    EXPECT_NE(text.find("| all     |   0.750 |        0.500 | 0.800 | 0.700 |"), std::string::npos)
        << text;
    EXPECT_NE(text.find("| layer_3 |       - |"), std::string::npos) << text;
    EXPECT_EQ(lines_of(text).back(), "time 1m23s  peak RSS 3.00 GiB  tier cpu  new best mAP@0.5");
}

TEST(UiSummary, EpochSummaryWithoutValidation) {
    smartcash::ui::EpochSummary s;
    s.epoch = 1;
    s.epochs = 2;
    s.seconds = 5.0;
    s.peak_device_mem = 512ULL << 20;
    const std::string text = smartcash::ui::format_epoch_summary(s);
    EXPECT_NE(text.find("not validated"), std::string::npos);
    EXPECT_EQ(text.find("mAP@0.5:0.95"), std::string::npos);
    EXPECT_NE(text.find("peak device 512.00 MiB"), std::string::npos) << text;
    EXPECT_EQ(text.find("RSS"), std::string::npos);
}

}  // namespace
