#include "pipeline/lane_picker.h"

#include <gtest/gtest.h>

#include <vector>

namespace segmentor {
namespace {

// A lane whose whole task room is `free_bytes` plus 100 bytes per task in flight.
LaneLoad load(int in_flight, int waiting, std::int64_t free_bytes, std::int64_t task_bytes = 0) {
  return LaneLoad{in_flight, waiting, free_bytes, free_bytes + 100 * in_flight, task_bytes};
}

TEST(LanePickerTest, TheLeastBusyLaneComesFirst) {
  const std::vector<LaneLoad> loads{load(3, 0, 900), load(1, 0, 100), load(2, 0, 500)};
  EXPECT_EQ(lane_preference(loads), (std::vector<std::size_t>{1, 2, 0}));
}

TEST(LanePickerTest, QueuedTasksCountAsWorkAlreadyPromised) {
  // Lane 0 runs fewer but has two waiting: it is the busier of the two.
  const std::vector<LaneLoad> loads{load(1, 2, 500), load(2, 0, 500)};
  EXPECT_EQ(lane_preference(loads).front(), 1u);
}

TEST(LanePickerTest, AmongEquallyBusyLanesTheOneWithMoreRoomWins) {
  // A card another process is growing on has less room left and drops behind.
  const std::vector<LaneLoad> loads{load(2, 0, 100), load(2, 0, 800), load(2, 0, -50)};
  EXPECT_EQ(lane_preference(loads), (std::vector<std::size_t>{1, 0, 2}));
}

TEST(LanePickerTest, LanesTheTaskFitsComeBeforeIdleLanesItDoesNot) {
  // Lane 0 is idle but another process left it no room for this task; lane 1 is busy but fits.
  const std::vector<LaneLoad> loads{load(0, 0, 50, 100), load(3, 0, 400, 100)};
  EXPECT_FALSE(loads[0].fits());
  EXPECT_TRUE(loads[1].fits());
  EXPECT_EQ(lane_preference(loads), (std::vector<std::size_t>{1, 0}));
}

TEST(LanePickerTest, ALaneWithAQueueNeverFitsSoFifoOrderHolds) {
  const std::vector<LaneLoad> loads{load(0, 1, 900, 100), load(4, 0, 200, 100)};
  EXPECT_FALSE(loads[0].fits());
  EXPECT_EQ(lane_preference(loads).front(), 1u);
}

TEST(LanePickerTest, AFullLaneWithAQueueBeatsAnIdleLaneThatCanNeverHoldTheTask) {
  // Lane 0: idle, but another process left it 50 bytes. Lane 1: busy and queued, 400 of room.
  const std::vector<LaneLoad> loads{LaneLoad{0, 0, 50, 50, 100}, LaneLoad{4, 2, 0, 400, 100}};
  EXPECT_FALSE(loads[0].fits_when_idle());
  EXPECT_TRUE(loads[1].fits_when_idle());
  EXPECT_EQ(lane_preference(loads).front(), 1u);
}

TEST(LanePickerTest, ATaskThatFitsNowhereGoesToTheLeastBusyLane) {
  const std::vector<LaneLoad> loads{LaneLoad{2, 0, 0, 200, 900}, LaneLoad{1, 0, 100, 200, 900}};
  EXPECT_EQ(lane_preference(loads).front(), 1u);
}

TEST(LanePickerTest, FullTiesKeepIndexOrder) {
  const std::vector<LaneLoad> loads{load(0, 0, 10), load(0, 0, 10), load(0, 0, 10)};
  EXPECT_EQ(lane_preference(loads), (std::vector<std::size_t>{0, 1, 2}));
}

TEST(LanePickerTest, LoadIsReadFromTheGatesStatistics) {
  GateStats stats;
  stats.in_flight = 2;
  stats.waiting = 1;
  stats.limit_bytes = 1000;
  stats.resident_bytes = 300;
  stats.in_flight_bytes = 200;
  const LaneLoad l = lane_load(stats, 400);
  EXPECT_EQ(l.in_flight, 2);
  EXPECT_EQ(l.waiting, 1);
  EXPECT_EQ(l.free_bytes, 500);
  EXPECT_EQ(l.room_bytes, 700);
  EXPECT_EQ(l.task_bytes, 400);
}

}  // namespace
}  // namespace segmentor
