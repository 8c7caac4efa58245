#include "common/stage_times.h"

#include <gtest/gtest.h>

#include <thread>

namespace segmentor {
namespace {

TEST(StageTimesTest, TimesGoToTheSinkOfTheirOwnThreadOnly) {
  StageTimes mine;
  StageTimes theirs;
  {
    StageSink sink(&mine);
    EXPECT_TRUE(stage_sink_installed());
    add_stage_time(Stage::kModel, 0.25);
    add_stage_time(Stage::kModel, 0.5);
    std::thread other([&] {
      EXPECT_FALSE(stage_sink_installed()) << "sinks are per thread";
      add_stage_time(Stage::kModel, 100.0);  // nowhere to go: dropped
      StageSink their_sink(&theirs);
      add_stage_time(Stage::kUpload, 1.0);
    });
    other.join();
  }
  EXPECT_FALSE(stage_sink_installed());
  add_stage_time(Stage::kModel, 7.0);  // after the sink is gone: dropped
  EXPECT_DOUBLE_EQ(mine[Stage::kModel], 0.75);
  EXPECT_DOUBLE_EQ(mine[Stage::kUpload], 0.0);
  EXPECT_DOUBLE_EQ(theirs[Stage::kUpload], 1.0);
  EXPECT_DOUBLE_EQ(theirs[Stage::kModel], 0.0);
}

TEST(StageTimesTest, NestedSinksRestoreTheOuterOne) {
  StageTimes outer;
  StageTimes inner;
  StageSink a(&outer);
  {
    StageSink b(&inner);
    add_stage_time(Stage::kEncode, 1.0);
    {
      StageSink none(nullptr);  // a step that wants no figures
      EXPECT_FALSE(stage_sink_installed());
      add_stage_time(Stage::kEncode, 5.0);
    }
  }
  add_stage_time(Stage::kWrite, 2.0);
  EXPECT_DOUBLE_EQ(inner[Stage::kEncode], 1.0);
  EXPECT_DOUBLE_EQ(outer[Stage::kEncode], 0.0);
  EXPECT_DOUBLE_EQ(outer[Stage::kWrite], 2.0);
}

TEST(StageTimesTest, ScopedStageMeasuresItsScopeAndTimesAdd) {
  StageTimes times;
  StageSink sink(&times);
  {
    ScopedStage s(Stage::kDecode);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_GE(times[Stage::kDecode], 0.004);
  EXPECT_LT(times[Stage::kDecode], 1.0);
  StageTimes more;
  more[Stage::kDecode] = 1.0;
  more += times;
  EXPECT_DOUBLE_EQ(more[Stage::kDecode], 1.0 + times[Stage::kDecode]);
  EXPECT_EQ(to_string(Stage::kGateWait), "gate_wait");
}

}  // namespace
}  // namespace segmentor
