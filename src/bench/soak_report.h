// What a soak (`segmentor bench --duration S`) measured: memory and throughput sampled after every
// round of load, least-squares slopes over the steady part (the leak detector), and how it is
// written (JSON, markdown). Plain data and pure functions; no LibTorch, no device.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace segmentor {

// Note [Soak leak detector]
// ~~~~~~~~~~~~~~~~~~~~~~~~~
// A soak runs rounds of the bench load back to back on one Runtime (models, lanes, allocator and
// CPU lane live for the whole soak; each round builds its own gate, ladder, cache policy and
// engine threads and tears them down, and reuses the lane's slot threads, as serve keeps them
// for its life: Note [Slot threads outlive engines]). After each round the process is quiescent —
// no task in flight — so host RSS (after malloc_trim, so glibc's cached free memory does not count)
// and the allocator's allocated/reserved bytes are read at the same point of the cycle every time,
// and a leak shows as a straight upward line through those readings rather than noise around the
// in-round peaks. The slope is a least-squares fit (bytes per hour) over the steady part: readings
// after the warm-up (the first `warmup_fraction` of the soak, at least one round), because the
// first rounds legitimately grow the allocator's cache, glibc's arenas and LibTorch's thread pools.
// Divided by the frames per hour it becomes bytes leaked per frame, the number that scales with
// load. Host RSS stays noisy even so (LibTorch's thread pools and glibc's arenas hold tens of MiB
// more or less from one round to the next: ±70 MiB on the CPU here), so the RSS verdict fits its
// floor: the steady readings are cut into up to kFloorWindows consecutive windows and the lowest
// reading of each is fitted. Leaked live memory lifts every reading, the floor included; noise
// mostly lifts the others. The verdict is a threshold on the RSS floor's slope and on the
// allocated slope (reserved is reported, not judged: the caching allocator may keep blocks it
// never returns), taken with the fit's uncertainty (Note [A leak verdict needs a long enough
// soak]).
//
// Note [A leak verdict needs a long enough soak]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A slope is only as good as its run: ±15 MiB of noise over a 3-minute steady part can tilt the
// line by ±300 MiB/h, so a flat GPU soak of 4 minutes measured +44 MiB/h and was called a leak
// (bench/RESULTS.md, 2026-11-30). Each slope is therefore judged with twice its standard error:
// a leak is suspected only when even slope − 2σ passes the limit; "no leak" needs slope + 2σ
// under it; anything between is "inconclusive", which says how long a soak would decide it
// rather than guessing. A real leak is still caught in minutes when it is steep (the 3.3 GiB/h
// one on the GPU was 160 MiB above the noise after four).
struct SoakSample {
  double t_seconds = 0;                  // since the soak started, at the end of the round
  int round = 0;                         // 1-based
  std::int64_t frames_done = 0;          // cumulative, all rounds so far
  std::int64_t frames_lost = 0;          // cumulative
  double round_fps = 0;                  // this round's throughput
  double round_p95_ms = 0;               // this round's p95 latency
  std::int64_t rss_bytes = 0;            // host resident set (VmRSS) of the process
  std::int64_t gpu_allocated_bytes = 0;  // summed over the GPU lanes; 0 on the CPU
  std::int64_t gpu_reserved_bytes = 0;
};

// y = intercept + slope × x, least squares. r2 = 1 - SS_res / SS_tot (1 for a perfect line,
// 0 where the line explains nothing; 0 when y is constant).
struct LineFit {
  double slope = 0;
  double intercept = 0;
  double r2 = 0;
  int points = 0;
  // The slope's standard error (same units): how far noise alone could tilt the line. 0 with
  // fewer than three points.
  double slope_error = 0;
};

// Fewer than two points, or every x equal: a zero fit with `points` set.
LineFit fit_line(const std::vector<double>& x, const std::vector<double>& y);

inline constexpr int kFloorWindows = 10;

struct SoakThresholds {
  double warmup_fraction = 0.1;  // of the soak's duration, skipped before fitting
  double leak_bytes_per_hour = 16.0 * 1024 * 1024;  // slope above this on RSS or allocated = leak
};

struct SoakReport {
  std::string card;
  std::string date;
  std::string device;
  std::string gate;
  std::vector<std::string> models;
  bool test_models = false;
  double duration_seconds = 0;  // asked for
  double wall_seconds = 0;      // ran (the last round finishes after the deadline)
  int frames_per_round = 0;
  SoakThresholds thresholds;
  std::vector<SoakSample> samples;
  // Filled by analyse_soak: fits over the steady samples, x in hours, y in bytes.
  int steady_from_round = 0;
  LineFit rss;        // every steady reading
  LineFit rss_floor;  // the lowest reading of each window (judged)
  LineFit gpu_allocated;
  LineFit gpu_reserved;
  LineFit throughput;          // frames/s per hour: a falling throughput is a slow leak too
  double frames_per_hour = 0;  // over the steady samples
  double rss_bytes_per_frame = 0;
  double gpu_allocated_bytes_per_frame = 0;
  std::int64_t frames_done = 0;
  std::int64_t frames_lost = 0;
  bool leak_suspected = false;
  bool inconclusive = false;  // neither a leak nor its absence is shown: the run was too short
  std::string verdict;        // one line for people
};

// Fills the fits, per-frame figures and the verdict from report.samples and report.thresholds.
void analyse_soak(SoakReport& report);

std::string soak_to_json(const SoakReport& report);
// A summary table plus the per-round readings (every round when there are few, else a sample).
std::string soak_to_markdown(const SoakReport& report);

}  // namespace segmentor
