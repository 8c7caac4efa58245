// What one `segmentor bench` run measured, and how it is written: one JSON file a run (the
// fields bench/README.md lists), a markdown table over several runs, and the percentile maths.
// Plain data and pure functions; no LibTorch, no device.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/stage_times.h"
#include "common/status.h"
#include "memory/concurrency_tuner.h"
#include "models/model_ceiling.h"

namespace segmentor {

// One reading of the sampler thread (every ~50 ms during a run).
struct MemorySample {
  double t_seconds = 0;             // since the run started
  std::int64_t reserved_bytes = 0;  // the caching allocator's reserved bytes
  std::int64_t allocated_bytes = 0;
  std::int64_t gate_limit_bytes = 0;  // AdmissionGate's limit (resident + task room or AIMD cap)
  int in_flight = 0;                  // tasks holding a gate ticket
  int waiting = 0;                    // tasks queued at the gate
};

// One run: one memory cap, one gate mode, one load. A plain value type.
struct BenchRunReport {
  std::string card;    // "NVIDIA H100 80GB HBM3", or "cpu"
  std::string date;    // UTC, ISO 8601: "2025-11-27T06:43:00Z"
  std::string device;  // "cuda:0", "cpu"; several GPU lanes: "cuda:0+cuda:1"
  int lanes = 1;       // GPU lanes (each with the cap); counts and samples are their sums
  double cap_gib = 0;  // GPU_MEMORY_LIMIT_MB / 1024; 0 = the whole card
  std::string gate;    // "adaptive", "fixed:N" or "legacy"
  int gate_max_concurrent = 0;
  int jobs = 0;
  int frames_per_job = 0;
  int in_flight_per_job = 0;  // frames each job keeps submitted (a broker prefetch)
  int frames = 0;             // jobs × frames_per_job = frames_done + frames_lost
  int hd_frames = 0;
  int fhd_frames = 0;
  std::string images;            // "generated" or the folder real images came from
  bool decode_included = false;  // frames were JPEG files decoded per task, not pre-decoded
  int frames_done = 0;
  int frames_lost = 0;           // tasks that ended with an error, for any reason
  int failed_by_oom = 0;         // ... of which with ErrorCode::kOutOfMemory
  std::uint64_t oom_events = 0;  // out-of-memory errors seen by the recovery ladder
  std::uint64_t retries = 0;
  std::uint64_t cpu_fallbacks = 0;
  double injected_oom_rate = 0;
  double wall_seconds = 0;
  double throughput_fps = 0;  // frames_done / wall_seconds
  double p50_ms = 0;          // latency: job submits the frame -> its masks are made
  double p95_ms = 0;
  double p99_ms = 0;
  double mean_ms = 0;
  double mean_gate_wait_ms = 0;
  double mean_segment_ms = 0;
  std::int64_t peak_reserved_bytes = 0;  // the largest on one card
  std::int64_t peak_allocated_bytes = 0;
  int peak_in_flight = 0;
  std::uint64_t gate_shrinks = 0;
  std::int64_t min_gate_limit_bytes = 0;  // over the samples; 0 when none
  std::uint64_t readmissions = 0;         // tasks re-admitted after an OOM back-off
  std::uint64_t cache_releases = 0;       // by the run's cache policy, every reason
  double cache_release_ms_total = 0;      // their summed cost (empty cache + synchronize)
  int gpu_cleanup_every_n = 0;            // GPU_CLEANUP_EVERY_N
  std::int64_t alloc_retries = 0;         // allocator frees-and-retries during the run (c10)
  std::int64_t predicted_task_bytes = 0;  // calibration's prediction for an FHD frame; 0 = none
  std::string cuda_streams;               // CUDA_STREAMS
  std::string concurrency_tuning;         // CONCURRENCY_TUNING (adaptive runs; "off" otherwise)
  std::vector<int> tuned_concurrency;     // each lane's tuned cap at the end of the run
  std::uint64_t tuner_decisions = 0;
  // What each lane's tuner measured: per level, lane time and tasks per second.
  std::vector<std::pair<std::string, LevelEstimate>> tuner_levels;
  std::string alloc_conf;           // PYTORCH_CUDA_ALLOC_CONF as set, "" when unset
  std::vector<std::string> models;  // lane's model names, "-standin" ones included
  bool test_models = false;
  std::map<std::string, int> frames_by_lane;
  std::vector<std::string> first_errors;  // up to a few distinct error messages
  std::optional<double> ceiling_fps;      // from --ceiling in the same invocation
  std::optional<double> fraction_of_ceiling;
  // Note [Over-admission or a passing OOM]: oom_events = over_admission + below_budget.
  std::uint64_t over_admission_ooms = 0;
  std::uint64_t below_budget_ooms = 0;
  std::uint64_t immediate_retries = 0;  // below-budget retries made at once (part of retries)
  double backoff_ms_total = 0;          // the ladder's back-off sleeps, summed over tasks
  // Note [Batching admitted tasks] (models/forward_batcher.h): per batched model, the mean number
  // of tasks' inputs per forward pass during this run; models that ran unbatched are absent.
  std::map<std::string, double> mean_batch;
  // Note [Where the time goes]: mean seconds per done frame, by stage; none with --no-stages.
  std::optional<StageTimes> stage_seconds_per_frame;
  bool masks_written = false;
  std::vector<MemorySample> samples;
};

// Linear interpolation between closest ranks (numpy's default) of `values`, p in [0, 100].
// 0 for an empty input. Sorts a copy.
double percentile(std::vector<double> values, double p);

// Sets p50_ms, p95_ms, p99_ms and mean_ms from per-frame latencies in seconds.
void fill_latency(BenchRunReport& report, const std::vector<double>& latency_seconds);

// Pretty JSON with every field above ("samples" as an array of objects).
std::string to_json(const BenchRunReport& report);
// The models' ceiling (`--ceiling`), with card and date, as its own result file.
std::string ceiling_to_json(const std::vector<ModelCeiling>& models, const std::string& card,
                            const std::string& date, double combined_fps);

// A markdown table, one row per run, then (when fixed runs are present) the best fixed
// concurrency per cap and how the adaptive run at that cap compares.
std::string to_markdown(const std::vector<BenchRunReport>& runs);
// "Where the time goes": one row per run with stage times, mean ms per frame (empty when no run
// has them). Upload, model and post-processing add up over both models.
std::string stages_to_markdown(const std::vector<BenchRunReport>& runs);

// "2025-11-27T064300Z_nvidia-h100-80gb-hbm3_cap8_adaptive": for one run's files (no extension).
std::string result_stem(const BenchRunReport& report);
// Lower case, [a-z0-9.-] kept, everything else one '-', trimmed.
std::string slug(const std::string& text);

// Now, UTC, as "2025-11-27T06:43:00Z".
std::string utc_now_iso8601();

}  // namespace segmentor
