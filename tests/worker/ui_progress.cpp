// The progress display in terminal and plain mode, driven with a fake clock.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>

#include "worker/ui/progress.hpp"

namespace {

using smartcash::ui::ProgressBar;
using smartcash::ui::ProgressState;
using namespace std::chrono_literals;

// Captures what a ProgressBar writes, through a real FILE*.
class Capture {
  public:
    Capture() : m_file(std::tmpfile()) {}
    ~Capture() { std::fclose(m_file); }
    Capture(const Capture&) = delete;
    Capture& operator=(const Capture&) = delete;

    std::FILE* file() { return m_file; }
    std::string text() {
        std::fflush(m_file);
        const long end = std::ftell(m_file);
        std::string out(static_cast<std::size_t>(end), '\0');
        std::rewind(m_file);
        const std::size_t got = std::fread(out.data(), 1, out.size(), m_file);
        out.resize(got);
        std::fseek(m_file, 0, SEEK_END);
        return out;
    }

  private:
    std::FILE* m_file;
};

ProgressState sample(long step, double loss) {
    ProgressState s;
    s.epoch = 2;
    s.epochs = 10;
    s.phase = 1;
    s.step_in_epoch = step;
    s.steps_in_epoch = 100;
    s.loss = loss;
    s.loss_box = 0.25;
    s.loss_obj = 0.5;
    s.loss_cls = 0.125;
    s.images_per_s = 12.34;
    s.eta_s = 80.0;
    s.rss = 1536ULL << 20;
    s.device_mem = 800ULL << 20;
    s.tier = "cpu";
    s.lr = 1e-4;
    return s;
}

std::size_t count(const std::string& text, char c) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), c));
}

TEST(UiProgress, WideLineShowsEveryField) {
    const std::string line = smartcash::ui::format_progress_line(sample(12, 1.23456), 200);
    EXPECT_LE(line.size(), 199U);
    for (const char* field : {"ep 2/10 p1", " 12/100  12%", "loss 1.2346", "box 0.250", "obj 0.500",
                              "cls 0.125", "12.3 img/s", "ETA 1m20s", "RSS 1.50 GiB",
                              "dev 800.00 MiB", " cpu", "lr 1.00e-04", "[====>"}) {
        EXPECT_NE(line.find(field), std::string::npos) << field << " in: " << line;
    }
}

TEST(UiProgress, NarrowLinesDropTheLeastUsefulPartsFirst) {
    for (int width : {20, 40, 60, 80, 100, 120}) {
        const std::string line = smartcash::ui::format_progress_line(sample(50, 1.0), width);
        EXPECT_LE(line.size(), static_cast<std::size_t>(width - 1)) << line;
    }
    const std::string line = smartcash::ui::format_progress_line(sample(50, 1.0), 80);
    EXPECT_NE(line.find("loss 1.0000"), std::string::npos) << line;
    EXPECT_NE(line.find("50/100"), std::string::npos) << line;
    EXPECT_NE(line.find("ETA"), std::string::npos) << line;
    EXPECT_NE(line.find("RSS"), std::string::npos) << line;
    EXPECT_EQ(line.find("lr "), std::string::npos) << line;
    EXPECT_EQ(line.find("box "), std::string::npos) << line;
    EXPECT_NE(line.find('['), std::string::npos) << line;
}

TEST(UiProgress, UnknownTotalsAndEta) {
    ProgressState s = sample(7, 1.0);
    s.steps_in_epoch = 0;
    s.eta_s = -1.0;
    s.device_mem = 0;
    s.tier.clear();
    const std::string line = smartcash::ui::format_progress_plain(s);
    EXPECT_NE(line.find("step 7/?"), std::string::npos) << line;
    EXPECT_NE(line.find("ETA --"), std::string::npos) << line;
    EXPECT_EQ(line.find("device"), std::string::npos) << line;
    EXPECT_EQ(line.find("tier"), std::string::npos) << line;
}

TEST(UiProgress, PlainModeWritesWholeLinesAtTheInterval) {
    Capture capture;
    const auto t0 = ProgressBar::Clock::time_point{};
    {
        ProgressBar bar(capture.file(), /*terminal=*/false, /*plain_interval_s=*/10.0);
        bar.update_at(sample(1, 1.0), t0);        // first: shown
        bar.update_at(sample(2, 2.0), t0 + 5s);   // too soon
        bar.update_at(sample(3, 3.0), t0 + 10s);  // shown
        bar.update_at(sample(4, 4.0), t0 + 15s);  // too soon, but the last: finish shows it
        bar.finish();
    }
    const std::string text = capture.text();
    EXPECT_EQ(count(text, '\n'), 3U) << text;
    EXPECT_EQ(count(text, '\r'), 0U);
    EXPECT_EQ(count(text, '\x1b'), 0U);
    EXPECT_NE(text.find("epoch 2/10 phase 1 step   1/100   1% loss 1.0000"), std::string::npos)
        << text;
    EXPECT_EQ(text.find("loss 2.0000"), std::string::npos);
    EXPECT_NE(text.find("loss 3.0000"), std::string::npos);
    EXPECT_NE(text.find("loss 4.0000"), std::string::npos);
    EXPECT_NE(text.find("tier cpu"), std::string::npos);
    EXPECT_NE(text.find("RSS 1.50 GiB"), std::string::npos);
}

TEST(UiProgress, TerminalModeRedrawsOneLineThrottled) {
    Capture capture;
    const auto t0 = ProgressBar::Clock::time_point{};
    ProgressBar bar(capture.file(), /*terminal=*/true);
    bar.set_width(150);
    bar.update_at(sample(1, 1.0), t0);            // first: drawn
    bar.update_at(sample(2, 2.0), t0 + 50ms);     // throttled
    bar.update_at(sample(3, 3.0), t0 + 150ms);    // drawn
    bar.update_at(sample(100, 4.0), t0 + 160ms);  // last step of the epoch: always drawn
    bar.finish();
    const std::string text = capture.text();
    EXPECT_EQ(count(text, '\r'), 3U) << text;
    EXPECT_EQ(count(text, '\n'), 1U) << text;
    EXPECT_EQ(text.back(), '\n');
    EXPECT_EQ(text.find("loss 2.0000"), std::string::npos);
    EXPECT_NE(text.find("loss 3.0000"), std::string::npos);
    EXPECT_NE(text.find("100/100 100%"), std::string::npos) << text;
    EXPECT_NE(text.find("\x1b[K"), std::string::npos);
    EXPECT_NE(text.find("RSS 1.50 GiB"), std::string::npos);
    EXPECT_NE(text.find("dev 800.00 MiB"), std::string::npos);
    EXPECT_NE(text.find("12.3 img/s"), std::string::npos);
}

TEST(UiProgress, NewEpochKeepsThePreviousLine) {
    Capture capture;
    const auto t0 = ProgressBar::Clock::time_point{};
    ProgressBar bar(capture.file(), /*terminal=*/true);
    bar.set_width(150);
    bar.update_at(sample(1, 1.0), t0);
    bar.update_at(sample(2, 2.0), t0 + 10ms);  // throttled, then shown when epoch 3 begins
    ProgressState next = sample(1, 5.0);
    next.epoch = 3;
    bar.update_at(next, t0 + 20ms);
    const std::string text = capture.text();
    const auto newline = text.find('\n');
    ASSERT_NE(newline, std::string::npos) << text;
    EXPECT_LT(text.find("loss 2.0000"), newline);
    EXPECT_GT(text.find("ep 3/10"), newline);
}

TEST(UiProgress, FinishWithNothingShownWritesNothing) {
    Capture capture;
    {
        ProgressBar bar(capture.file(), /*terminal=*/true);
        bar.finish();
    }
    EXPECT_TRUE(capture.text().empty());
}

}  // namespace
