// close_epoch(): the epoch-end rule of early stopping, on progress records made by hand.
#include <gtest/gtest.h>

#include "worker/train/early_stopping.hpp"

using smartcash::EarlyStopConfig;
using smartcash::train::close_epoch;
using smartcash::train::TrainProgress;

namespace {

EarlyStopConfig rules(int patience, double min_delta = 0.01) {
    EarlyStopConfig r;
    r.patience = patience;
    r.min_delta = min_delta;
    return r;
}

}  // namespace

TEST(EarlyStopping, AnImprovementAboveMinDeltaIsTheNewBest) {
    TrainProgress p;
    p.epoch = 0;
    p.step_in_epoch = 7;
    int phase2_start = 3;
    auto v = close_epoch(p, phase2_start, 3, 0.20, rules(2));
    EXPECT_TRUE(v.improved);
    EXPECT_DOUBLE_EQ(p.best_map50, 0.20);
    EXPECT_EQ(p.best_epoch, 0);
    EXPECT_EQ(p.epoch, 1);
    EXPECT_EQ(p.step_in_epoch, 0);
    // Within min_delta of the best: not an improvement, one stale epoch.
    v = close_epoch(p, phase2_start, 3, 0.205, rules(2));
    EXPECT_FALSE(v.improved);
    EXPECT_EQ(p.stale_epochs, 1);
    EXPECT_DOUBLE_EQ(p.best_map50, 0.20);
    EXPECT_EQ(p.best_epoch, 0);
}

TEST(EarlyStopping, AnEpochWithoutValidationLeavesTheCountAlone) {
    TrainProgress p;
    p.best_map50 = 0.5;
    p.stale_epochs = 1;
    int phase2_start = 5;
    const auto v = close_epoch(p, phase2_start, 5, std::nullopt, rules(2));
    EXPECT_FALSE(v.improved);
    EXPECT_EQ(p.stale_epochs, 1);
    EXPECT_TRUE(v.message.empty());
}

TEST(EarlyStopping, PatienceInPhaseOneMovesOnToPhaseTwoWithACleanCount) {
    TrainProgress p;
    p.epoch = 1;
    p.best_map50 = 0.3;
    p.stale_epochs = 1;
    int phase2_start = 10;
    const auto v = close_epoch(p, phase2_start, 4, 0.1, rules(2));
    EXPECT_TRUE(v.phase_cut);
    EXPECT_TRUE(p.phase_cut);
    EXPECT_EQ(phase2_start, 2);
    EXPECT_EQ(p.epoch, 2);
    EXPECT_EQ(p.stale_epochs, 0);
    EXPECT_FALSE(p.finished);
    EXPECT_NE(v.message.find("phase 2"), std::string::npos);
}

TEST(EarlyStopping, PatienceInPhaseTwoEndsTheRunEarly) {
    TrainProgress p;
    p.epoch = 4;
    p.best_map50 = 0.3;
    p.stale_epochs = 2;
    int phase2_start = 3;
    const auto v = close_epoch(p, phase2_start, 10, 0.2, rules(3));
    EXPECT_TRUE(p.finished);
    EXPECT_EQ(p.finish_reason, "early_stop");
    EXPECT_FALSE(v.phase_cut);
    EXPECT_EQ(phase2_start, 3);
}

TEST(EarlyStopping, TheLastEpochFinishesAndPatienceZeroNeverStops) {
    TrainProgress p;
    p.epoch = 5;
    p.best_map50 = 0.9;
    p.stale_epochs = 50;
    int phase2_start = 3;
    close_epoch(p, phase2_start, 4, 0.1, rules(0));
    EXPECT_FALSE(p.finished) << "epoch 6 of 7: patience 0 is off";
    close_epoch(p, phase2_start, 4, 0.1, rules(0));
    EXPECT_TRUE(p.finished);
    EXPECT_EQ(p.finish_reason, "finished");
}

TEST(EarlyStopping, TheCountStartsAgainWhenPhaseOneEndsOnSchedule) {
    TrainProgress p;
    p.epoch = 2;
    p.best_map50 = 0.4;
    p.stale_epochs = 1;
    int phase2_start = 3;
    close_epoch(p, phase2_start, 3, 0.1, rules(5));
    EXPECT_EQ(p.epoch, 3);
    EXPECT_EQ(p.stale_epochs, 0);
    EXPECT_FALSE(p.phase_cut);
}
