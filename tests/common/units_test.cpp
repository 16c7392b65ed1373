#include "common/units.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace smartcash {
namespace {

TEST(Units, ParsesBinarySizes) {
    EXPECT_EQ(parse_size("8GiB"), 8ull << 30);
    EXPECT_EQ(parse_size("512MiB"), 512ull << 20);
    EXPECT_EQ(parse_size("100KiB"), 100ull << 10);
    EXPECT_EQ(parse_size("1.5GiB"), 3ull << 29);
    EXPECT_EQ(parse_size("2TiB"), 2ull << 40);
    EXPECT_EQ(parse_size("300mib"), 300ull << 20);
    EXPECT_EQ(parse_size(" 12 GiB "), 12ull << 30);
}

TEST(Units, ParsesDecimalSizesAndBytes) {
    EXPECT_EQ(parse_size("2GB"), 2000000000ull);
    EXPECT_EQ(parse_size("1.5KB"), 1500ull);
    EXPECT_EQ(parse_size("1024"), 1024ull);
    EXPECT_EQ(parse_size("77B"), 77ull);
    EXPECT_EQ(parse_size("0"), 0ull);
    EXPECT_EQ(parse_size("18446744073709551615"), 18446744073709551615ull);
}

TEST(Units, RejectsBadSizes) {
    for (const char* text : {"", "abc", "-1GiB", "1.5", "12 parsecs", "GiB", "1GiB2", "1e3",
                             "18446744073709551616", "20000000TiB", "1..5GiB"}) {
        EXPECT_THROW(parse_size(text), std::invalid_argument) << text;
    }
    try {
        parse_size("12XB");
        FAIL() << "no exception";
    } catch (const std::invalid_argument& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("12XB"), std::string::npos) << what;
        EXPECT_NE(what.find("GiB"), std::string::npos) << what;
        EXPECT_NE(what.find("unknown unit"), std::string::npos) << what;
    }
}

TEST(Units, ParsesDurations) {
    EXPECT_DOUBLE_EQ(parse_duration_seconds("30s"), 30.0);
    EXPECT_DOUBLE_EQ(parse_duration_seconds("250ms"), 0.25);
    EXPECT_DOUBLE_EQ(parse_duration_seconds("5m"), 300.0);
    EXPECT_DOUBLE_EQ(parse_duration_seconds("2h"), 7200.0);
    EXPECT_DOUBLE_EQ(parse_duration_seconds("1d"), 86400.0);
    EXPECT_DOUBLE_EQ(parse_duration_seconds("1.5s"), 1.5);
    EXPECT_DOUBLE_EQ(parse_duration_seconds("12"), 12.0);
    EXPECT_DOUBLE_EQ(parse_duration_seconds("0.5"), 0.5);
    EXPECT_DOUBLE_EQ(parse_duration_seconds("1h30m"), 5400.0);
    EXPECT_DOUBLE_EQ(parse_duration_seconds("2m 30s"), 150.0);
    EXPECT_DOUBLE_EQ(parse_duration_seconds("0"), 0.0);
}

TEST(Units, RejectsBadDurations) {
    for (const char* text : {"", "s", "-5s", "5 fortnights", "1h30", "abc", "1e3s", "5s5"}) {
        EXPECT_THROW(parse_duration_seconds(text), std::invalid_argument) << text;
    }
    try {
        parse_duration_seconds("5x");
        FAIL() << "no exception";
    } catch (const std::invalid_argument& e) {
        std::string what = e.what();
        EXPECT_NE(what.find("250ms"), std::string::npos) << what;
    }
}

TEST(Units, FormatsSizes) {
    EXPECT_EQ(format_size(0), "0 B");
    EXPECT_EQ(format_size(512), "512 B");
    EXPECT_EQ(format_size(1536), "1.50 KiB");
    EXPECT_EQ(format_size(3ull << 29), "1.50 GiB");
    EXPECT_EQ(format_size(300ull << 20), "300.00 MiB");
    EXPECT_EQ(format_size((1ull << 20) - 1), "1.00 MiB");
}

TEST(Units, FormatsExactSizesThatParseBack) {
    EXPECT_EQ(format_size_exact(0), "0");
    EXPECT_EQ(format_size_exact(12ull << 30), "12GiB");
    EXPECT_EQ(format_size_exact(300ull << 20), "300MiB");
    EXPECT_EQ(format_size_exact(1000), "1000");
    EXPECT_EQ(format_size_exact(3ull << 29), "1536MiB");
    for (std::uint64_t v : {0ull, 1ull, 1000ull, 4096ull, 3ull << 29, 123456789ull}) {
        EXPECT_EQ(parse_size(format_size_exact(v)), v);
    }
}

TEST(Units, FormatsDurations) {
    EXPECT_EQ(format_duration(12.34), "12.3s");
    EXPECT_EQ(format_duration(0), "0.0s");
    EXPECT_EQ(format_duration(185), "3m05s");
    EXPECT_EQ(format_duration(3725), "1h02m");
    EXPECT_EQ(format_duration(59.97), "1m00s");
    EXPECT_EQ(format_duration(90000), "25h00m");
}

TEST(Units, FormatsExactDurationsThatParseBack) {
    EXPECT_EQ(format_duration_exact(1800), "30m");
    EXPECT_EQ(format_duration_exact(21600), "6h");
    EXPECT_EQ(format_duration_exact(0.25), "250ms");
    EXPECT_EQ(format_duration_exact(30), "30s");
    EXPECT_EQ(format_duration_exact(0), "0s");
    for (double v : {0.0, 0.25, 1.5, 0.1, 1.0 / 3.0, 30.0, 86400.0, 1e-4, 12345.678}) {
        EXPECT_EQ(parse_duration_seconds(format_duration_exact(v)), v) << format_duration_exact(v);
    }
}

}  // namespace
}  // namespace smartcash
