#include "memory/concurrency_tuner.h"

#include <gtest/gtest.h>

#include <functional>
#include <vector>

namespace segmentor {
namespace {

// A GPU whose lane time at level c is `lane_seconds(c)`: drives the tuner as the engine would,
// with every task admitted at the current cap, and returns the caps it applied.
struct SimulatedLane {
  std::function<double(int)> lane_seconds;
  std::vector<int> applied;
  std::unique_ptr<ConcurrencyTuner> tuner;

  SimulatedLane(int min, int max, std::function<double(int)> seconds)
      : lane_seconds(std::move(seconds)) {
    ConcurrencyTunerOptions options;
    options.min_concurrent = min;
    options.max_concurrent = max;
    tuner = ConcurrencyTuner::create(options, [this](int cap) { applied.push_back(cap); }).value();
  }
  void run(int tasks) {
    for (int i = 0; i < tasks; ++i) {
      const int level = tuner->cap();
      tuner->on_task_done(level, lane_seconds(level));
    }
  }
  // The cap the tuner sits at most over the last `tasks` tasks.
  int settled_cap(int tasks) {
    std::vector<int> seen(16, 0);
    for (int i = 0; i < tasks; ++i) {
      const int level = tuner->cap();
      ++seen[static_cast<std::size_t>(level)];
      tuner->on_task_done(level, lane_seconds(level));
    }
    return static_cast<int>(std::max_element(seen.begin(), seen.end()) - seen.begin());
  }
};

TEST(ConcurrencyTunerTest, StartsAtTheMaximumAndAppliesIt) {
  SimulatedLane lane(1, 8, [](int) { return 0.02; });
  EXPECT_EQ(lane.tuner->cap(), 8);
  EXPECT_EQ(lane.applied, std::vector<int>{8});
}

TEST(ConcurrencyTunerTest, SlowFirstCallsOnNewSlotsDoNotMisleadIt) {
  // Each level's first report is a cold slot thread (a second), as measured on the H200; the
  // median of the window sees past it.
  const std::vector<double> fps{0, 43.4, 72.0, 77.1, 69.8, 60, 55, 52, 50};
  std::vector<int> reports(9, 0);
  SimulatedLane lane(1, 8, [&](int c) {
    return reports[static_cast<std::size_t>(c)]++ == 0 ? 1.0 : c / fps[static_cast<std::size_t>(c)];
  });
  lane.run(400);
  EXPECT_EQ(lane.settled_cap(2000), 3);
}

TEST(ConcurrencyTunerTest, LightModelsSettleWhereThroughputPeaks) {
  // The bundled models on the H200 (bench/RESULTS.md): fastest at 3, slower at 4 and beyond.
  const std::vector<double> fps{0, 43.4, 72.0, 77.1, 69.8, 60, 55, 52, 50};
  SimulatedLane lane(1, 8, [&](int c) { return c / fps[static_cast<std::size_t>(c)]; });
  lane.run(400);
  EXPECT_EQ(lane.settled_cap(2000), 3);
}

TEST(ConcurrencyTunerTest, AFlatTopKeepsTheLowestLevelWithinTolerance) {
  // The stand-ins: 57.5 at 3 and 58.7 at 4 (within 3 %), flat beyond.
  const std::vector<double> fps{0, 36.3, 54.6, 57.5, 58.7, 58.6, 58.5, 58.5, 58.4};
  SimulatedLane lane(1, 8, [&](int c) { return c / fps[static_cast<std::size_t>(c)]; });
  lane.run(400);
  EXPECT_EQ(lane.settled_cap(2000), 3);
}

TEST(ConcurrencyTunerTest, WhereMoreIsAlwaysFasterItClimbsToTheMaximum) {
  SimulatedLane lane(1, 6, [](int) { return 0.05; });  // perfect scaling
  lane.run(400);
  EXPECT_EQ(lane.settled_cap(1000), 6);
}

TEST(ConcurrencyTunerTest, ItFollowsWhenTheBestLevelMoves) {
  bool heavy = false;  // heavy: more at once helps; light: 2 is best
  SimulatedLane lane(1, 6, [&](int c) {
    const std::vector<double> light{0, 40, 60, 50, 45, 40, 35};
    return heavy ? 0.05 : c / light[static_cast<std::size_t>(c)];
  });
  lane.run(600);
  EXPECT_EQ(lane.settled_cap(1000), 2);
  heavy = true;
  lane.run(3000);
  EXPECT_EQ(lane.settled_cap(1000), 6);
}

TEST(ConcurrencyTunerTest, NeverLeavesMinAndMax) {
  SimulatedLane lane(2, 3, [](int) { return 0.05; });
  lane.run(500);
  for (int cap : lane.applied) {
    EXPECT_GE(cap, 2);
    EXPECT_LE(cap, 3);
  }
}

TEST(ConcurrencyTunerTest, IgnoresReportsThatCarryNoTiming) {
  SimulatedLane lane(1, 4, [](int) { return 0.05; });
  for (int i = 0; i < 100; ++i) lane.tuner->on_task_done(1, 0.0);
  lane.tuner->on_task_done(0, 0.1);
  EXPECT_TRUE(lane.tuner->estimates().empty());
  EXPECT_EQ(lane.tuner->cap(), 4);
}

TEST(ConcurrencyTunerTest, RejectsBadOptions) {
  ConcurrencyTunerOptions options;
  options.min_concurrent = 5;
  options.max_concurrent = 4;
  EXPECT_FALSE(ConcurrencyTuner::create(options, {}).ok());
  options = {};
  options.tolerance = 1.5;
  EXPECT_FALSE(ConcurrencyTuner::create(options, {}).ok());
  options = {};
  options.window = 4;  // fewer than the reports a level needs
  EXPECT_FALSE(ConcurrencyTuner::create(options, {}).ok());
}

}  // namespace
}  // namespace segmentor
