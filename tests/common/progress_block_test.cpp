// The live progress block as a pure function (status and width -> lines), and LiveBlock's
// drawing: redrawn in place on a terminal, plain lines elsewhere.
#include "common/progress_block.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "common/live_block.hpp"

namespace smartcash {
namespace {

protocol::StatusView training() {
    protocol::StatusView s;
    s.state = "running";
    s.phase = "running";
    s.tier = "cpu";
    s.tier_index = 1;
    s.tier_order = {"accelerated", "cpu", "minimal"};
    s.device = "cpu";
    s.step = 120;
    s.total_steps = 240;
    s.epoch = 14;  // 0-based: the 15th
    s.epochs = 30;
    s.training_phase = 2;
    s.phases = 2;
    s.steps_per_epoch = 8;
    s.step_in_epoch = 2;
    s.loss = 1.23456;
    s.map50 = 0.5;
    s.images_per_s = 53.6;
    s.eta_s = 65;
    s.pid = 7;
    s.rss = 1ull << 30;
    s.memory_limit = 4ull << 30;
    s.device_mem = 0;
    s.launches = 2;
    return s;
}

bool has(const std::vector<std::string>& lines, const std::string& text) {
    for (const auto& l : lines)
        if (l.find(text) != std::string::npos) return true;
    return false;
}

TEST(ProgressBlock, ShowsBarsAndFiguresAPersonNeeds) {
    const auto lines = progress_block(training(), 100);
    std::string all;
    for (const auto& l : lines) all += l + "\n";
    EXPECT_TRUE(has(lines, "tier cpu (2/3) on cpu")) << all;
    EXPECT_TRUE(has(lines, "epoch 15/30 phase 2/2")) << all;
    EXPECT_TRUE(has(lines, " 2/8")) << all;
    EXPECT_TRUE(has(lines, "50%  step 120/240  ETA 1m05s")) << all;
    EXPECT_TRUE(has(lines, "loss 1.2346")) << all;
    EXPECT_TRUE(has(lines, "images/s 53.6")) << all;
    EXPECT_TRUE(has(lines, "1.00 GiB / 4.00 GiB")) << all;
    EXPECT_FALSE(has(lines, "device ")) << "no device memory on a CPU tier: " << all;
}

TEST(ProgressBlock, EveryLineFitsTheWidth) {
    for (int width : {40, 60, 80, 200}) {
        for (const auto& l : progress_block(training(), width))
            EXPECT_LE(static_cast<int>(l.size()), width) << width << ": " << l;
    }
}

TEST(ProgressBlock, UnknownFiguresShowAsDashes) {
    protocol::StatusView s;
    s.state = "running";
    const auto lines = progress_block(s, 80);
    EXPECT_TRUE(has(lines, "loss -  mAP@0.5 -  images/s -"));
    EXPECT_TRUE(has(lines, "ETA -"));
    EXPECT_TRUE(has(lines, "no limit"));
}

TEST(ProgressBlock, BarsFillInProportion) {
    EXPECT_EQ(progress_bar(0, 12), "[          ]");
    EXPECT_EQ(progress_bar(0.5, 12), "[=====>    ]");
    EXPECT_EQ(progress_bar(1, 12), "[==========]");
    EXPECT_EQ(progress_bar(7, 12), "[==========]");  // clamped
    EXPECT_EQ(progress_bar(-1, 12), "[          ]");
}

TEST(ProgressBlock, TheOneLineSummary) {
    EXPECT_EQ(progress_line(training()),
              "step 120/240, epoch 15/30, loss 1.2346, 53.6 img/s, ETA 1m05s, RSS 1.00 GiB of "
              "4.00 GiB (tier cpu (2/3) on cpu, running)");
}

TEST(LiveBlock, OnATerminalTheBlockIsRedrawnUnderLinesThatStay) {
    std::ostringstream out;
    {
        LiveBlock b(out, /*terminal=*/true);
        b.show({"a", "b"});
        b.line("event");
        b.show({"c", "d"});
    }
    const std::string up = "\033[1A\033[2K";
    EXPECT_EQ(out.str(),
              "\r"
              "a\nb\n" +
                  up + up +
                  "\r"
                  "event\na\nb\n" +
                  up + up +
                  "\r"
                  "c\nd\n" +
                  up + up + "\r");
}

TEST(LiveBlock, ElsewhereOnlyTheLinesThatStayArePrinted) {
    std::ostringstream out;
    {
        LiveBlock b(out, /*terminal=*/false);
        b.show({"a", "b"});
        b.line("event");
        b.show({"c"});
    }
    EXPECT_EQ(out.str(), "event\n");
}

}  // namespace
}  // namespace smartcash
