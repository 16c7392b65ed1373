// smartcashctl's texts for people as pure functions: `status` and the `history` table.
#include <gtest/gtest.h>

#include "ctl/history_table.hpp"
#include "ctl/status_text.hpp"

namespace smartcash::ctl {
namespace {

using protocol::Json;

TEST(CtlText, StatusSaysWhatAPersonChecks) {
    protocol::StatusView s;
    s.state = "running";
    s.phase = "running";
    s.tier = "cpu";
    s.tier_index = 1;
    s.tier_order = {"accelerated", "cpu"};
    s.tier_device = "cpu";
    s.device = "cpu";
    s.step = 30;
    s.total_steps = 48;
    s.epoch = 3;
    s.epochs = 4;
    s.training_phase = 2;
    s.phases = 2;
    s.step_in_epoch = 6;
    s.steps_per_epoch = 12;
    s.eta_s = 9;
    s.images_per_s = 40;
    s.loss = 0.5;
    s.pid = 5;
    s.rss = 512ull << 20;
    s.memory_limit = 1ull << 30;
    s.launches = 2;
    s.tiers = std::map<std::string, protocol::TierSummary>{{"accelerated", {0, 0, 1, "oom"}},
                                                           {"cpu", {0, 0, 1, ""}}};
    const std::string text = status_text(s);
    for (const char* want :
         {"state:      running (running)", "tier:       cpu (2 of 2: accelerated > cpu)",
          "device cpu", "phase 2/2, epoch 4/4, step 30/48 (6/12 in this epoch)",
          "ETA:        9.0s at 40.0 images/s", "loss:       0.5000", "mAP@0.5:    -",
          "memory:     512.00 MiB of 1.00 GiB (50%)",
          "launches 2: accelerated 1 (last oom), cpu 1 (last -)"})
        EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
}

TEST(CtlText, AStatusFromStateJsonSaysTheSupervisorIsNotRunning) {
    protocol::StatusView s;
    s.state = "done";
    s.supervisor_running = false;
    s.epoch = 31;  // the worker's count after the last epoch
    s.epochs = 31;
    const std::string text = status_text(s);
    EXPECT_NE(text.find("supervisor: not running"), std::string::npos) << text;
    EXPECT_NE(text.find("epoch 31/31"), std::string::npos) << text;
    EXPECT_NE(text.find("worker:     not running"), std::string::npos) << text;
}

TEST(CtlText, StatusOfARankShowsEveryRank) {
    protocol::StatusView s;
    s.state = "running";
    protocol::WorldStatus w;
    w.rank = 1;
    w.world_size = 3;
    w.store = "10.0.0.1:29500";
    w.round = 4;
    w.waiting_for = {2};
    protocol::world::RankView r0{0, "running", "cpu", 12, 512ull << 20, "cpu", 0.4};
    protocol::world::RankView r1{1, "joining", "minimal", 12, 0, "", 9};
    protocol::world::RankView r2{2, "", "", -1, 0, "", -1};
    w.ranks = {r0, r1, r2};
    s.world = w;
    const std::string text = status_text(s);
    for (const char* want :
         {"world:      rank 1 of 3, store 10.0.0.1:29500, round 4, waiting for rank 2",
          "  rank 0: running, tier cpu (cpu), step 12, RSS 512.00 MiB\n",
          "  rank 1: joining, tier minimal (-), step 12, RSS 0 B, last news 9 s ago",
          "  rank 2: not seen yet"})
        EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
    // One rank: no world lines.
    s.world.reset();
    EXPECT_EQ(status_text(s).find("world:"), std::string::npos);
}

TEST(CtlText, HistoryIsATableWithAColumnPerQuestion) {
    const std::vector<Json> events = {
        Json{{"t", "2026-01-02T03:04:05.678Z"},
             {"event", "launch"},
             {"tier", "big"},
             {"resume_step", -1}},
        Json{{"t", "2026-01-02T03:05:00.000Z"},
             {"event", "exit"},
             {"tier", "big"},
             {"class", "oom-killed"},
             {"peak_rss", 1ull << 30},
             {"step", 12}},
        Json{{"t", "2026-01-02T03:05:01.000Z"},
             {"event", "tier-move"},
             {"from", "big"},
             {"to", "small"}},
    };
    const std::string table = history_table(events);
    std::vector<std::string> lines;
    for (std::size_t at = 0, nl; (nl = table.find('\n', at)) != std::string::npos; at = nl + 1)
        lines.push_back(table.substr(at, nl - at));
    ASSERT_EQ(lines.size(), 4u) << table;
    EXPECT_EQ(lines[0].find("TIME"), 0u);
    const auto event_column = lines[0].find("EVENT");
    const auto class_column = lines[0].find("CLASS");
    EXPECT_EQ(lines[2].find("exit"), event_column) << table;
    EXPECT_EQ(lines[2].find("oom-killed"), class_column) << table;
    EXPECT_NE(lines[2].find("1.00 GiB"), std::string::npos) << table;
    EXPECT_NE(lines[2].find("12"), std::string::npos) << table;
    EXPECT_EQ(lines[1].find("2026-01-02 03:04:05"), 0u) << table;
    EXPECT_NE(lines[3].find("big -> small"), std::string::npos) << table;
}

}  // namespace
}  // namespace smartcash::ctl
