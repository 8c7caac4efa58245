// The in-process load generator behind `segmentor bench`: J jobs × F frames, overlapping, through
// the real Engine (gate, recovery ladder, CPU fallback lane) with no broker, while a sampler thread
// records device memory and the gate's limit. One call = one run = one BenchRunReport.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_report.h"
#include "common/status.h"
#include "config/config.h"
#include "imaging/image.h"
#include "runtime/lane_guards.h"
#include "runtime/runtime.h"

namespace segmentor {

// Note [Bench gate modes]
// ~~~~~~~~~~~~~~~~~~~~~~~
// Every mode runs the same Engine, lanes and models; only admission and recovery differ.
//  * adaptive — the Runtime's design: admission by calibrated bytes against the live budget with
//    AIMD (GPU_MEMORY_THRESHOLD, MIN/MAX_CONCURRENT_IMAGES), the recovery ladder per RETRY_ON_OOM /
//    MAX_OOM_RETRIES, and the CPU fallback lane.
//  * fixed:N — admission by count only (no predicted bytes; MIN = MAX = N), recovery ladder and
//    CPU fallback still on: what a well-tuned static semaphore achieves. `--sweep` runs 1..K.
//  * legacy — what the Python service did with video frames: no gate at all (every frame a job
//    has submitted runs at once: MIN = MAX = jobs × in-flight-per-job), no retry, no CPU
//    fallback, no cache release after an OOM. An OOM loses the frame. (Its product-image semaphore
//    of MAX_CONCURRENT_IMAGES=2 never saw frames, and the bench's load is frames.)
// Each run makes its own gate, ladder and cache policy, so AIMD state and counters start fresh.
enum class GateMode { kAdaptive, kFixed, kLegacy };

struct GateSpec {
  GateMode mode = GateMode::kAdaptive;
  int concurrency = 0;  // fixed:N only

  std::string name() const;  // "adaptive", "fixed:3", "legacy"
  // Parses name(); kInvalidArgument otherwise (N must be >= 1).
  static Result<GateSpec> parse(std::string_view text);
};

// The images the jobs' frames cycle through. Frame k of a job is HD or FHD by a fixed pattern
// (fhd_fraction of them FHD), then the next image of that size.
struct BenchFrames {
  std::vector<RgbImage> hd;   // 1280×720, pre-decoded (tasks skip the decoder)
  std::vector<RgbImage> fhd;  // 1920×1080
  // When not empty: image files decoded per task instead (decode included in the timings);
  // each file counts as HD or FHD by its size class.
  std::vector<std::filesystem::path> hd_files;
  std::vector<std::filesystem::path> fhd_files;
  std::string source = "generated";
  bool decode_included() const { return !hd_files.empty() || !fhd_files.empty(); }
};

// `per_size` textured images of each size, deterministic for `seed` (objects on a gradient with
// noise, so models see structure rather than a flat colour).
BenchFrames generate_frames(int per_size, unsigned seed = 1);
// Images from `dir` (.jpg .jpeg .png .webp), at most `per_size` of each size. With `decode`, the
// files are used as they are (each counts by its size; others are skipped) and decoded per task;
// without, each file is decoded once and resized (nearest) to both HD and FHD.
Result<BenchFrames> load_frames(const std::filesystem::path& dir, int per_size, bool decode);

struct BenchRunOptions {
  GateSpec gate;
  double cap_gib = 0;  // > 0: DeviceMemory::set_process_limit for this run; 0 = GPU_MEMORY_LIMIT_MB
  int jobs = 4;
  int frames_per_job = 250;
  int in_flight_per_job = 4;  // frames a job keeps submitted; the next goes when one finishes
  double fhd_fraction = 0.5;
  std::chrono::milliseconds sample_interval{50};
  std::string card = "unknown";
  // The recovery ladder's back-off; empty = RecoveryOptions' default (0.5 s, 1 s, 2 s).
  std::optional<std::vector<std::chrono::nanoseconds>> backoff;
  // Per-stage times (Note [Where the time goes]); off = no stream syncs at stage boundaries.
  bool stage_times = true;
  // Encode and write the masks (to a temporary folder) so encode and write count too.
  bool write_masks = false;
};

// The guards a run builds on each lane (runtime/lane_guards.h): the configuration's, as `run` and
// `serve` use them, changed only as the gate mode says (Note [Bench gate modes]) and with the
// run's back-off. The cache ticker stays on: the runtime leaves ticking to each run.
LaneGuardOptions bench_guard_options(const Config& config, const BenchRunOptions& options);

// Runs one load through `runtime`'s lanes and device. `config` supplies the gate and ladder
// settings for the adaptive mode and the injected OOM rate the lanes were loaded with (reported
// only). Blocks until every frame finished. Errors: bad options, or a gate/ladder that cannot be
// built; a frame that fails is counted (frames_lost), never an error of the run.
Result<BenchRunReport> run_bench(Runtime& runtime, const Config& config, const BenchFrames& frames,
                                 const BenchRunOptions& options);

// The card's name from the NVIDIA driver (/proc/driver/nvidia/gpus/*/information) for a CUDA
// device, "cpu" for the CPU, else `device`.
std::string detect_card_name(const std::string& device);

}  // namespace segmentor
