#include "common/protocol.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace smartcash::protocol {
namespace {

std::vector<std::string> drain(LineSplitter& splitter) {
    std::vector<std::string> lines;
    while (auto line = splitter.next()) lines.push_back(*line);
    return lines;
}

TEST(LineSplitter, LineSplitAcrossReads) {
    LineSplitter splitter;
    splitter.feed("{\"ty", 4);
    EXPECT_EQ(splitter.next(), std::nullopt);
    splitter.feed("pe\":1}", 6);
    EXPECT_EQ(splitter.next(), std::nullopt);
    splitter.feed("\n{\"a\"", 5);
    EXPECT_EQ(drain(splitter), std::vector<std::string>{"{\"type\":1}"});
    splitter.feed(":2}\n", 4);
    EXPECT_EQ(drain(splitter), std::vector<std::string>{"{\"a\":2}"});
    EXPECT_FALSE(splitter.overflowed());
}

TEST(LineSplitter, SeveralLinesInOneRead) {
    LineSplitter splitter;
    const std::string data = "a\nb\n\nc";
    splitter.feed(data.data(), data.size());
    EXPECT_EQ(drain(splitter), (std::vector<std::string>{"a", "b", ""}));
    splitter.feed("\n", 1);
    EXPECT_EQ(drain(splitter), std::vector<std::string>{"c"});
}

TEST(LineSplitter, StripsOneTrailingCarriageReturn) {
    // CRLF senders (a client on another system) are accepted: the '\r' is not part of the line.
    LineSplitter splitter;
    const std::string data = "{\"cmd\":\"status\"}\r\nx\r\r\n";
    splitter.feed(data.data(), data.size());
    EXPECT_EQ(drain(splitter), (std::vector<std::string>{"{\"cmd\":\"status\"}", "x\r"}));
}

TEST(LineSplitter, LineOfExactlyTheLimitIsKept) {
    LineSplitter splitter;
    const std::string line(max_line_bytes, 'x');
    splitter.feed(line.data(), line.size());
    EXPECT_EQ(splitter.next(), std::nullopt);
    splitter.feed("\n", 1);
    EXPECT_EQ(splitter.next(), line);
    EXPECT_FALSE(splitter.overflowed());
}

TEST(LineSplitter, OverlongLineInOneReadIsDroppedThenNextLineRecovers) {
    LineSplitter splitter;
    const std::string data = std::string(max_line_bytes + 1, 'x') + "\nnext\n";
    splitter.feed(data.data(), data.size());
    EXPECT_EQ(drain(splitter), std::vector<std::string>{"next"});
    EXPECT_TRUE(splitter.overflowed());
}

TEST(LineSplitter, OverlongLineAcrossReadsIsDroppedUpToItsNewline) {
    LineSplitter splitter;
    const std::string chunk(4096, 'y');
    std::size_t fed = 0;
    while (fed <= max_line_bytes + 3 * chunk.size()) {
        splitter.feed(chunk.data(), chunk.size());
        fed += chunk.size();
        EXPECT_EQ(splitter.next(), std::nullopt);
    }
    EXPECT_TRUE(splitter.overflowed());
    EXPECT_TRUE(splitter.take_overflow());
    EXPECT_FALSE(splitter.overflowed());
    // The tail of the overlong line is still discarded: nothing of it comes out as a line.
    const std::string tail = "tail-of-the-long-line\nok\n";
    splitter.feed(tail.data(), tail.size());
    EXPECT_EQ(drain(splitter), std::vector<std::string>{"ok"});
    EXPECT_FALSE(splitter.overflowed());
}

TEST(Decode, AcceptsAnObjectWithTheKey) {
    std::string error;
    auto message = decode(R"({"type":"hello","v":1})", &error);
    ASSERT_TRUE(message) << error;
    EXPECT_EQ((*message)["type"], "hello");
    auto cmd = decode(R"({"cmd":"status"})", &error, "cmd");
    ASSERT_TRUE(cmd) << error;
    EXPECT_EQ((*cmd)["cmd"], "status");
}

TEST(Decode, RejectsMalformedJson) {
    std::string error;
    EXPECT_FALSE(decode(R"({"type":"hello")", &error));
    EXPECT_EQ(error, "malformed JSON");
    error.clear();
    EXPECT_FALSE(decode("", &error));
    EXPECT_EQ(error, "malformed JSON");
    error.clear();
    EXPECT_FALSE(decode(R"({"type":"a"} {"type":"b"})", &error));
    EXPECT_EQ(error, "malformed JSON");
}

TEST(Decode, RejectsInvalidUtf8) {
    std::string error;
    EXPECT_FALSE(decode("{\"type\":\"a\xff\xfe\"}", &error));
    EXPECT_EQ(error, "malformed JSON");
    error.clear();
    // A truncated multi-byte sequence.
    EXPECT_FALSE(decode("{\"type\":\"\xc3\"}", &error));
    EXPECT_EQ(error, "malformed JSON");
}

TEST(Decode, RejectsNonObjects) {
    for (const char* line : {"[1,2]", "\"type\"", "42", "null", "true"}) {
        std::string error;
        EXPECT_FALSE(decode(line, &error)) << line;
        EXPECT_EQ(error, "message is not a JSON object") << line;
    }
}

TEST(Decode, RejectsMissingOrNonStringKey) {
    std::string error;
    EXPECT_FALSE(decode(R"({"cmd":"status"})", &error));
    EXPECT_EQ(error, "missing string field \"type\"");
    error.clear();
    EXPECT_FALSE(decode(R"({"type":"hello"})", &error, "cmd"));
    EXPECT_EQ(error, "missing string field \"cmd\"");
    error.clear();
    EXPECT_FALSE(decode(R"({"type":7})", &error));
    EXPECT_EQ(error, "missing string field \"type\"");
}

TEST(Decode, RejectsOverlongLine) {
    std::string line = R"({"type":"x","pad":")";
    line += std::string(max_line_bytes, 'p') + "\"}";
    std::string error;
    EXPECT_FALSE(decode(line, &error));
    EXPECT_NE(error.find("longer than"), std::string::npos) << error;
}

TEST(Encode, OneLineThatDecodesBack) {
    Json message{{"type", "progress"}, {"text", "a\nb"}};
    std::string line = encode(message);
    ASSERT_FALSE(line.empty());
    EXPECT_EQ(line.back(), '\n');
    EXPECT_EQ(line.find('\n'), line.size() - 1);
    std::string error;
    auto back = decode(std::string_view(line).substr(0, line.size() - 1), &error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(*back, message);
}

}  // namespace
}  // namespace smartcash::protocol
