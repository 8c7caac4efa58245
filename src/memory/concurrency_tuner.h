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
// The gate bounds memory, not speed: with light models 8 GiB holds 20 tasks, and a GPU may be
// fastest with fewer at once. With CONCURRENCY_TUNING=throughput each lane's gate also has a
// concurrency cap in [MIN', MAX_CONCURRENT_IMAGES], which this tuner sets. (Measured on the H200,
// bench/RESULTS.md: neutral with the stand-ins, 99.4 % of the best fixed concurrency; the short
// bundled-model runs that first suggested a loss at high concurrency turned out to be dominated
// by cold slot threads, whose first calls took 3 to 6 s. So the default is off.)
//
// It learns from what every finished task reports: the number of tasks in flight when it was
// admitted (its level c, the gate's count including itself) and its time on the lane t. By
// Little's law a GPU kept at level c makes X(c) = c / t(c) tasks a second, where t(c) is the
// typical lane time at that level: the median of its last `window` reports, because the first
// call on a new slot thread (stream, cuBLAS handle, workspaces) takes up to a second and a mean
// would carry that for long (measured on the H200, bench/RESULTS.md). X does not depend on how
// fast work arrives, which a frames-per-window count would. Every `decision_interval` tasks it
// picks the cap:
//   * best = the lowest level whose X is within `tolerance` of the highest X measured (lower
//     levels hold less memory and give lower latency at the same throughput);
//   * if best − 1 has too few reports it tries best − 1, else if best + 1 has none it tries
//     best + 1; and every `explore_every` decisions it re-measures a neighbour of best, above
//     and below in turn (throughput moves: other images, another process on the card);
//   * otherwise the cap becomes best.
// It starts at MAX, which is what the gate did before it, and walks down while a level is as good
// as the one above. Tasks that met an out-of-memory error are not reported: their time is the
// ladder's back-off.
struct ConcurrencyTunerOptions {
  int min_concurrent = 1;     // MIN' (at least 1)
  int max_concurrent = 4;     // MAX_CONCURRENT_IMAGES
  int samples_per_level = 8;  // reports before a level's X counts
  int window = 16;            // the reports per level whose median is its lane time
  int decision_interval = 0;  // tasks between decisions; 0 = 2 × cap + 8
  double tolerance = 0.03;    // levels within 3 % of the best X count as equally good
  int explore_every = 10;     // decisions between re-measurements of best's neighbours
};

struct LevelEstimate {
  int level = 0;
  int samples = 0;              // reports ever
  double lane_seconds = 0;      // the median of the last `window`
  double tasks_per_second = 0;  // level / lane_seconds
};

// Thread-safe (one mutex). `apply` is called with each new cap (first from the constructor, with
// MAX), under the tuner's lock, so caps reach the gate in the order they were decided; it must not
// call back into the tuner.
class ConcurrencyTuner {
 public:
  static Result<std::unique_ptr<ConcurrencyTuner>> create(ConcurrencyTunerOptions options,
                                                          std::function<void(int)> apply);

  // One task finished on the GPU lane without an out-of-memory error.
  void on_task_done(int level, double lane_seconds);

  int cap() const;
  std::uint64_t decisions() const;
  std::vector<LevelEstimate> estimates() const;  // levels with reports, lowest first

 private:
  struct Level {
    int samples = 0;
    std::vector<double> recent;  // a ring of the last `window` lane times
  };
  ConcurrencyTuner(ConcurrencyTunerOptions options, std::function<void(int)> apply);
  // All require mutex_.
  int decide_locked();  // the next cap
  bool measured_locked(int level) const;
  double lane_seconds_locked(int level) const;  // the median of `recent`

  const ConcurrencyTunerOptions options_;
  const std::function<void(int)> apply_;
  mutable std::mutex mutex_;
  std::vector<Level> levels_;  // index = level; 0 unused
  int cap_;
  int since_decision_ = 0;
  std::uint64_t decisions_ = 0;
};

}  // namespace segmentor
