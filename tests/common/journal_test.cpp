// The shared journal reader of the supervisor and integration tests.
#include "tests/support/journal.hpp"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace smartcash::test_support {
namespace {

std::string write_journal(const std::string& name, const std::string& text) {
    const std::string dir = std::string(SMARTCASH_TEST_TMP) + "/journal";
    std::filesystem::create_directories(dir);
    const std::string path = dir + "/" + name + ".jsonl";
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    return path;
}

TEST(ReadJournal, ReadsEveryLine) {
    const auto path = write_journal("whole", "{\"event\":\"a\"}\n{\"event\":\"b\"}\n");
    const auto all = read_journal(path);
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(only_events(all, "b").size(), 1u);
}

TEST(ReadJournal, SkipsATornLastLine) {
    const auto path = write_journal("torn", "{\"event\":\"a\"}\n{\"event\":\"b\",\"st");
    EXPECT_EQ(read_journal(path).size(), 1u);
}

TEST(ReadJournal, FailsOnAMalformedLineInTheMiddle) {
    const auto path = write_journal("middle", "{\"event\":\"a\"}\nnot json\n{\"event\":\"b\"}\n");
    EXPECT_NONFATAL_FAILURE(read_journal(path), "middle.jsonl:2: malformed journal line: not json");
}

TEST(ReadJournal, FailsOnAnEmptyLineInTheMiddle) {
    const auto path = write_journal("empty", "{\"event\":\"a\"}\n\n{\"event\":\"b\"}\n");
    EXPECT_NONFATAL_FAILURE(read_journal(path), "empty.jsonl:2: malformed journal line");
}

}  // namespace
}  // namespace smartcash::test_support
