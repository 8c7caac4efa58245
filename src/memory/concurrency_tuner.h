// ConcurrencyTuner: finds, per GPU, the concurrency that makes the most frames per second within
// what the memory gate allows (CONCURRENCY_TUNING=throughput).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "common/status.h"

namespace segmentor {

// Note [Tuning concurrency by throughput]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The gate bounds memory, not speed. With light models 8 GiB holds 20 tasks, but the GPU (and the
// CPU work around each call) is fastest with 3: measured on the H200 with the bundled models,
// 77 frames/s at 3 at once and 50 at 8 (bench/RESULTS.md). So each lane's gate also has a
// concurrency cap in [MIN', MAX_CONCURRENT_IMAGES], which this tuner sets.
//
// It learns from what every finished task reports: the number of tasks in flight when it was
// admitted (its level c, the gate's count including itself) and its time on the lane t. By
// Little's law a GPU kept at level c makes X(c) = c / t(c) tasks a second, where t(c) is the
// typical lane time at that level (an exponentially weighted mean). This measure does not depend
// on how fast work arrives, which a frames-per-window count would. Every `decision_interval`
// tasks it picks the cap:
//   * best = the lowest level whose X is within `tolerance` of the highest X measured (lower
//     levels hold less memory and give lower latency at the same throughput);
//   * if the cap is at best and best + 1 has too few samples, or every `explore_every` decisions,
//     it tries best + 1 (throughput may have moved: other images, another process on the card);
//   * otherwise the cap becomes best.
// It starts at MIN' and climbs one level at a time while a level is better than the one below.
// Tasks that met an out-of-memory error are not reported: their time is the ladder's back-off.
struct ConcurrencyTunerOptions {
  int min_concurrent = 1;     // MIN' (at least 1)
  int max_concurrent = 4;     // MAX_CONCURRENT_IMAGES
  int samples_per_level = 8;  // before a level's X counts
  int decision_interval = 0;  // tasks between decisions; 0 = 2 × cap + 8
  double ewma_weight = 0.2;   // of each new lane time in its level's mean
  double tolerance = 0.03;    // levels within 3 % of the best X count as equally good
  int explore_every = 10;     // decisions between tries of best + 1
};

struct LevelEstimate {
  int level = 0;
  int samples = 0;
  double lane_seconds = 0;      // the weighted mean
  double tasks_per_second = 0;  // level / lane_seconds
};

// Thread-safe (one mutex). `apply` is called with each new cap, with no lock held by the tuner's
// caller beyond its own; it must not call back into the tuner.
class ConcurrencyTuner {
 public:
  static Result<std::unique_ptr<ConcurrencyTuner>> create(ConcurrencyTunerOptions options,
                                                          std::function<void(int)> apply);

  // One task finished on the GPU lane without an out-of-memory error.
  void on_task_done(int level, double lane_seconds);

  int cap() const;
  std::uint64_t decisions() const;
  std::vector<LevelEstimate> estimates() const;  // measured levels, lowest first

 private:
  ConcurrencyTuner(ConcurrencyTunerOptions options, std::function<void(int)> apply);
  int decide_locked();  // the next cap; requires mutex_

  const ConcurrencyTunerOptions options_;
  const std::function<void(int)> apply_;
  mutable std::mutex mutex_;
  struct Level {
    int samples = 0;
    double lane_seconds = 0;
  };
  std::vector<Level> levels_;  // index = level; 0 unused
  int cap_;
  int since_decision_ = 0;
  std::uint64_t decisions_ = 0;
};

}  // namespace segmentor
