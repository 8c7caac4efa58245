// The soak behind `segmentor bench --duration S`: rounds of the bench load (bench_runner.h) back
// to back on one Runtime until S seconds have passed, reading host RSS and the GPU allocator after
// each round; soak_report.h fits the slopes (Note [Soak leak detector]).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "bench/bench_runner.h"
#include "bench/soak_report.h"
#include "common/status.h"
#include "config/config.h"
#include "runtime/runtime.h"

namespace segmentor {

struct SoakOptions {
  BenchRunOptions round;  // one round's load (jobs, frames per job, gate, cap, ...)
  std::chrono::seconds duration{3600};
  int min_rounds = 3;  // also run at least this many rounds (a fit needs points)
  SoakThresholds thresholds;
  // Called after every round with its reading (progress lines); may be empty.
  std::function<void(const SoakSample&)> on_round;
};

// Runs rounds until `duration` has passed (the round running at the deadline finishes) and at
// least `min_rounds` ran, then analyses. Errors: a round that cannot start (bad options); lost
// frames are counted, not errors.
Result<SoakReport> run_soak(Runtime& runtime, const Config& config, const BenchFrames& frames,
                            const SoakOptions& options);

// This process's resident set in bytes (VmRSS of /proc/self/status); 0 where unreadable.
std::int64_t process_rss_bytes();

}  // namespace segmentor
