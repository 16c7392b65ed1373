// Shared helpers for the data tests: scratch directories and small fixture files.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <string>

namespace smartcash::data::test {

namespace fs = std::filesystem;

/// A fresh, empty directory named after the running test.
inline fs::path scratch_dir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    fs::path dir = fs::path(SMARTCASH_TEST_TMP) / "data" /
                   (std::string(info->test_suite_name()) + "." + info->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

inline void write_text(const fs::path& path, const std::string& text) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path, std::ios::binary);
    out << text;
}

inline std::string read_bytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// Writes a PNG of one BGR colour.
inline void write_image(const fs::path& path, int width, int height,
                        cv::Scalar bgr = cv::Scalar(30, 90, 200)) {
    fs::create_directories(path.parent_path());
    cv::Mat image(height, width, CV_8UC3, bgr);
    ASSERT_TRUE(cv::imwrite(path.string(), image)) << path;
}

}  // namespace smartcash::data::test
