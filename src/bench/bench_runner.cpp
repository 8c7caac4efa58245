#include "bench/bench_runner.h"

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <stop_token>
#include <thread>
#include <utility>

#include "imaging/decode.h"
#include "imaging/input_files.h"
#include "memory/admission_gate.h"
#include "memory/cache_policy.h"
#include "memory/calibration.h"
#include "memory/calibration_cache.h"
#include "memory/oom_recovery.h"
#include "models/model_loader.h"
#include "pipeline/engine.h"

namespace segmentor {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr int kHdWidth = 1280;
constexpr int kHdHeight = 720;
constexpr int kFhdWidth = 1920;
constexpr int kFhdHeight = 1080;
constexpr std::size_t kMaxDistinctErrors = 5;

// One runtime lane with this run's own gate, cache policy and ladder.
struct BenchLane {
  explicit BenchLane(DeviceLane& lane) : source(lane) {}
  DeviceLane& source;
  LaneGuards guards;
  std::int64_t alloc_retries_before = 0;
};

RgbImage make_frame(int width, int height, std::mt19937& random) {
  RgbImage image{width, height, {}};
  image.pixels.resize(image.pixel_count() * 3);
  std::uniform_int_distribution<int> noise(-12, 12);
  std::uniform_int_distribution<int> colour(0, 255);
  const int base[3] = {colour(random), colour(random), colour(random)};
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      auto* p = &image.pixels[(static_cast<std::size_t>(y) * width + x) * 3];
      for (int c = 0; c < 3; ++c) {
        const int gradient = (c == 0 ? x * 255 / width : c == 1 ? y * 255 / height : 128);
        p[c] =
            static_cast<std::uint8_t>(std::clamp((base[c] + gradient) / 2 + noise(random), 0, 255));
      }
    }
  }
  // A few solid "objects": rectangles and discs in random colours.
  std::uniform_int_distribution<int> px(0, width - 1);
  std::uniform_int_distribution<int> py(0, height - 1);
  std::uniform_int_distribution<int> size(height / 10, height / 3);
  for (int object = 0; object < 5; ++object) {
    const int cx = px(random), cy = py(random), r = size(random);
    const std::uint8_t rgb[3] = {static_cast<std::uint8_t>(colour(random)),
                                 static_cast<std::uint8_t>(colour(random)),
                                 static_cast<std::uint8_t>(colour(random))};
    const bool disc = object % 2 == 0;
    for (int y = std::max(0, cy - r); y < std::min(height, cy + r); ++y) {
      for (int x = std::max(0, cx - r); x < std::min(width, cx + r); ++x) {
        if (disc && (x - cx) * (x - cx) + (y - cy) * (y - cy) > r * r) continue;
        auto* p = &image.pixels[(static_cast<std::size_t>(y) * width + x) * 3];
        p[0] = rgb[0];
        p[1] = rgb[1];
        p[2] = rgb[2];
      }
    }
  }
  return image;
}

RgbImage resize_nearest(const RgbImage& source, int width, int height) {
  RgbImage out{width, height, {}};
  out.pixels.resize(out.pixel_count() * 3);
  for (int y = 0; y < height; ++y) {
    const int sy = static_cast<int>(static_cast<std::int64_t>(y) * source.height / height);
    for (int x = 0; x < width; ++x) {
      const int sx = static_cast<int>(static_cast<std::int64_t>(x) * source.width / width);
      const auto* s = &source.pixels[(static_cast<std::size_t>(sy) * source.width + sx) * 3];
      auto* d = &out.pixels[(static_cast<std::size_t>(y) * width + x) * 3];
      d[0] = s[0];
      d[1] = s[1];
      d[2] = s[2];
    }
  }
  return out;
}

// Whether the k-th frame is FHD: spreads round(k × fraction) FHD frames evenly over the sequence.
bool is_fhd(int k, double fraction) {
  return static_cast<int>((k + 1) * fraction) > static_cast<int>(k * fraction);
}

}  // namespace

std::string GateSpec::name() const {
  switch (mode) {
    case GateMode::kAdaptive:
      return "adaptive";
    case GateMode::kFixed:
      return "fixed:" + std::to_string(concurrency);
    case GateMode::kLegacy:
      return "legacy";
  }
  return "unknown";
}

Result<GateSpec> GateSpec::parse(std::string_view text) {
  if (text == "adaptive") return GateSpec{GateMode::kAdaptive, 0};
  if (text == "legacy") return GateSpec{GateMode::kLegacy, 0};
  if (text.rfind("fixed:", 0) == 0) {
    const std::string number(text.substr(6));
    int n = 0;
    std::size_t used = 0;
    try {
      n = std::stoi(number, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == number.size() && !number.empty() && n >= 1) return GateSpec{GateMode::kFixed, n};
  }
  return invalid_argument("gate '" + std::string(text) +
                          "': expected adaptive, legacy or fixed:N with N >= 1");
}

BenchFrames generate_frames(int per_size, unsigned seed) {
  BenchFrames frames;
  std::mt19937 random(seed);
  for (int i = 0; i < std::max(1, per_size); ++i) {
    frames.hd.push_back(make_frame(kHdWidth, kHdHeight, random));
    frames.fhd.push_back(make_frame(kFhdWidth, kFhdHeight, random));
  }
  return frames;
}

Result<BenchFrames> load_frames(const std::filesystem::path& dir, int per_size, bool decode) {
  SEGMENTOR_ASSIGN_OR_RETURN(auto inputs, collect_input_files({dir}));
  BenchFrames frames;
  frames.source = dir.string();
  for (const auto& input : inputs) {
    const bool hd_full = static_cast<int>(frames.hd.size() + frames.hd_files.size()) >= per_size;
    const bool fhd_full = static_cast<int>(frames.fhd.size() + frames.fhd_files.size()) >= per_size;
    if (hd_full && fhd_full) break;
    SEGMENTOR_ASSIGN_OR_RETURN(RgbImage image, decode_image_file(input.path, DecodeOptions{}));
    if (decode) {
      const SizeClass size_class = size_class_of(image.width, image.height);
      if (size_class == SizeClass::kHd && !hd_full) frames.hd_files.push_back(input.path);
      if (size_class == SizeClass::kFhd && !fhd_full) frames.fhd_files.push_back(input.path);
      continue;
    }
    if (!hd_full) frames.hd.push_back(resize_nearest(image, kHdWidth, kHdHeight));
    if (!fhd_full) frames.fhd.push_back(resize_nearest(image, kFhdWidth, kFhdHeight));
  }
  if (frames.hd.empty() && frames.hd_files.empty() && frames.fhd.empty() &&
      frames.fhd_files.empty()) {
    return not_found("bench: no usable images in " + dir.string() +
                     (decode ? " (with --decode, files must be HD or FHD sized)" : ""));
  }
  return frames;
}

std::string detect_card_name(const std::string& device) {
  if (device == "cpu") return "cpu";
  const auto colon = device.find(':');
  const std::string name =
      nvidia_card_name(colon == std::string::npos ? 0 : std::stoi(device.substr(colon + 1)));
  return name.empty() ? device : name;
}

LaneGuardOptions bench_guard_options(const Config& config, const BenchRunOptions& options) {
  LaneGuardOptions guards = lane_guard_options(config);
  if (options.backoff) guards.recovery.backoff = *options.backoff;
  switch (options.gate.mode) {
    case GateMode::kAdaptive:
      break;
    case GateMode::kFixed:
      guards.gate.min_concurrent = guards.gate.max_concurrent = options.gate.concurrency;
      guards.gate.count_only = false;
      guards.concurrency_tuner = false;
      break;
    case GateMode::kLegacy:
      guards.gate.min_concurrent = guards.gate.max_concurrent =
          options.jobs * options.in_flight_per_job;
      guards.gate.count_only = false;
      guards.recovery.retry_on_oom = false;
      guards.release_after_oom = false;
      guards.cache_policy = false;
      guards.concurrency_tuner = false;
      break;
  }
  return guards;
}

Result<BenchRunReport> run_bench(Runtime& runtime, const Config& config, const BenchFrames& frames,
                                 const BenchRunOptions& options) {
  if (options.jobs < 1 || options.frames_per_job < 1 || options.in_flight_per_job < 1) {
    return invalid_argument("bench: jobs, frames per job and frames in flight must be >= 1");
  }
  if (!(options.fhd_fraction >= 0.0 && options.fhd_fraction <= 1.0)) {
    return invalid_argument("bench: the FHD fraction must be in [0, 1]");
  }
  const bool use_files = frames.decode_included();
  const std::size_t hd_count = use_files ? frames.hd_files.size() : frames.hd.size();
  const std::size_t fhd_count = use_files ? frames.fhd_files.size() : frames.fhd.size();
  if ((hd_count == 0 && options.fhd_fraction < 1.0) ||
      (fhd_count == 0 && options.fhd_fraction > 0.0)) {
    return invalid_argument("bench: no frames of a size the FHD fraction asks for");
  }
  // The cap for each run, and a clean allocator so runs do not inherit each other's cache.
  const std::int64_t cap_bytes =
      options.cap_gib > 0 ? static_cast<std::int64_t>(options.cap_gib * 1024.0 * 1024.0 * 1024.0)
                          : config.gpu_memory_limit_mb * 1024 * 1024;

  // Gate, ladder and cache policy for this mode (Note [Bench gate modes]), one set per lane,
  // built as the runtime builds them for run and serve.
  const LaneGuardOptions guard_options = bench_guard_options(config, options);
  const bool use_calibration = options.gate.mode == GateMode::kAdaptive;
  ModelSet* cpu_fallback =
      options.gate.mode == GateMode::kLegacy ? nullptr : runtime.cpu_lane.get();
  std::vector<std::unique_ptr<BenchLane>> lanes;
  for (const auto& source : runtime.lanes) {
    DeviceMemory& device = *source->device;
    SEGMENTOR_RETURN_IF_ERROR(device.set_process_limit(cap_bytes));
    device.release_cache();
    device.reset_peak();
    auto lane = std::make_unique<BenchLane>(*source);
    SEGMENTOR_ASSIGN_OR_RETURN(lane->guards,
                               build_lane_guards(config, device, source->resident, guard_options));
    lane->alloc_retries_before = device.snapshot().num_alloc_retries;
    lanes.push_back(std::move(lane));
  }
  std::vector<LaneView> guarded;
  for (const auto& lane : lanes) {
    const LaneGuards& g = lane->guards;
    // The lane's own slot threads: a round reuses the threads (and their per-thread LibTorch
    // state) of the rounds before it, as serve's one engine does (Note [Slot threads outlive
    // engines]).
    guarded.push_back({lane->source.lane.get(), g.gate.get(), g.recovery.get(),
                       use_calibration ? &lane->source.calibration : nullptr, g.cache.get(),
                       g.tuner.get(), lane->source.slot_threads.get()});
  }
  const DeviceLane& first = runtime.first();

  BenchRunReport report;
  report.card = options.card;
  report.date = utc_now_iso8601();
  for (const auto& lane : runtime.lanes) {
    report.device += (report.device.empty() ? "" : "+") + lane->name();
  }
  report.lanes = static_cast<int>(runtime.lanes.size());
  report.cap_gib = static_cast<double>(cap_bytes) / (1024.0 * 1024.0 * 1024.0);
  report.gate = options.gate.name();
  report.gate_max_concurrent = guard_options.gate.max_concurrent;
  report.jobs = options.jobs;
  report.frames_per_job = options.frames_per_job;
  report.in_flight_per_job = options.in_flight_per_job;
  report.frames = options.jobs * options.frames_per_job;
  report.images = frames.source;
  report.decode_included = use_files;
  report.injected_oom_rate = config.inject_oom_rate;
  report.models.push_back(first.lane->foreground->info().name);
  if (first.lane->people) report.models.push_back(first.lane->people->info().name);
  if (first.lane->person_detector) {
    report.models.push_back(first.lane->person_detector->info().name);
  }
  report.test_models = runtime.uses_test_models;
  report.cuda_streams = config.cuda_streams;
  report.gpu_cleanup_every_n = config.gpu_cleanup_every_n;
  report.concurrency_tuning =
      options.gate.mode == GateMode::kAdaptive ? config.concurrency_tuning : "off";
  if (const char* conf = std::getenv("PYTORCH_CUDA_ALLOC_CONF")) report.alloc_conf = conf;
  if (!first.calibration.empty()) {
    auto predicted = first.calibration.predict_task_bytes(1920, 1080);
    if (predicted.ok()) report.predicted_task_bytes = *predicted;
  }

  // The sampler: device and gate every sample_interval, until stopped.
  // Note [Batching admitted tasks]: the models' batch counters before the run, summed by name.
  auto batch_totals = [&] {
    std::map<std::string, BatchStats> totals;
    for (const auto& lane : runtime.lanes) {
      for (const MaskModel* model : lane->lane->models()) {
        const BatchStats stats = model->batch_stats();
        BatchStats& total = totals[model->info().name];
        total.batches += stats.batches;
        total.inputs += stats.inputs;
      }
    }
    return totals;
  };
  const std::map<std::string, BatchStats> batches_before = batch_totals();
  const auto start = SteadyClock::now();
  std::mutex sample_mutex;
  std::condition_variable_any sample_wake;
  std::vector<MemorySample> samples;
  // With several lanes a sample is their sum (the plot's cap line is the cap × lanes).
  auto take_sample = [&] {
    MemorySample s;
    s.t_seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
    for (const auto& lane : lanes) {
      const MemorySnapshot snap = lane->source.device->snapshot();
      const GateStats stats = lane->guards.gate->stats();
      s.reserved_bytes += snap.reserved_bytes;
      s.allocated_bytes += snap.allocated_bytes;
      s.gate_limit_bytes += stats.limit_bytes;
      s.in_flight += stats.in_flight;
      s.waiting += stats.waiting;
    }
    std::lock_guard lock(sample_mutex);
    samples.push_back(s);
  };
  std::jthread sampler([&](std::stop_token stop) {
    while (!stop.stop_requested()) {
      take_sample();
      std::unique_lock lock(sample_mutex);
      sample_wake.wait_for(lock, stop, options.sample_interval, [] { return false; });
    }
  });

  // The jobs: each keeps in_flight_per_job frames submitted; a finished frame submits the next.
  struct Tally {
    std::mutex mutex;
    std::condition_variable all_done;
    int finished = 0;
    std::vector<int> next_frame;  // per job
    std::vector<SteadyClock::time_point> submitted;
    std::vector<double> latencies;
    double wait_seconds = 0, segment_seconds = 0;
    StageTimes stages;  // summed over done frames
    std::set<std::string> errors;
    SteadyClock::time_point last_finish;
  } tally;
  tally.next_frame.assign(static_cast<std::size_t>(options.jobs), 0);
  tally.submitted.resize(static_cast<std::size_t>(report.frames));
  std::vector<std::size_t> next_of_size(2, 0);

  EngineOptions engine_options;
  engine_options.layout = MaskLayout{std::filesystem::temp_directory_path() / "segmentor-bench",
                                     config.foreground_mask_rel_path, config.people_mask_rel_path,
                                     config.product_mask_rel_path};
  engine_options.write_masks = options.write_masks;
  engine_options.stage_times = options.stage_times;
  report.masks_written = options.write_masks;
  engine_options.max_concurrent = guard_options.gate.max_concurrent;
  engine_options.worker_threads =
      default_worker_threads(static_cast<int>(lanes.size()), guard_options.gate.max_concurrent);
  engine_options.decode = DecodeOptions{config.max_image_pixels, {}};
  {
    Engine engine(engine_options, guarded, cpu_fallback);
    // Builds frame `f` of `job`; requires tally.mutex (it picks the next image of its size).
    auto make_task = [&](int job, int f) {
      const int index = f * options.jobs + job;  // interleaved across jobs
      const bool fhd = is_fhd(index, options.fhd_fraction);
      std::size_t& next = next_of_size[fhd ? 1 : 0];
      EngineTask task;
      task.kind = AssetKind::kVideoFrame;
      task.id = "job" + std::to_string(job) + "_frame" + std::to_string(f);
      if (use_files) {
        const auto& files = fhd ? frames.fhd_files : frames.hd_files;
        task.source = files[next++ % files.size()];
      } else {
        const auto& images = fhd ? frames.fhd : frames.hd;
        task.source = fhd ? "generated-fhd" : "generated-hd";
        task.image = images[next++ % images.size()];
      }
      (fhd ? report.fhd_frames : report.hd_frames)++;
      tally.submitted[static_cast<std::size_t>(job * options.frames_per_job + f)] =
          SteadyClock::now();
      return task;
    };
    std::function<void(const EngineTask&, const TaskOutcome&)> on_done;
    auto submit_next = [&](int job) {  // requires tally.mutex
      const int f = tally.next_frame[static_cast<std::size_t>(job)];
      if (f >= options.frames_per_job) return;
      ++tally.next_frame[static_cast<std::size_t>(job)];
      engine.submit(make_task(job, f), on_done);
    };
    on_done = [&](const EngineTask& task, const TaskOutcome& outcome) {
      const auto now = SteadyClock::now();
      const auto underscore = task.id.find('_');
      const int job = std::stoi(task.id.substr(3, underscore - 3));
      const int f = std::stoi(task.id.substr(underscore + 6));
      std::lock_guard lock(tally.mutex);
      if (outcome.status.ok()) {
        ++report.frames_done;
        ++report.frames_by_lane[outcome.lane];
        tally.latencies.push_back(
            std::chrono::duration<double>(
                now - tally.submitted[static_cast<std::size_t>(job * options.frames_per_job + f)])
                .count());
        tally.wait_seconds += outcome.wait_seconds;
        tally.segment_seconds += outcome.segment_seconds;
        tally.stages += outcome.stages;
      } else {
        ++report.frames_lost;
        if (outcome.status.code() == ErrorCode::kOutOfMemory) ++report.failed_by_oom;
        if (tally.errors.size() < kMaxDistinctErrors) {
          tally.errors.insert(std::string(to_string(outcome.status.code())) + ": " +
                              outcome.status.message().substr(0, 300));
        }
      }
      ++tally.finished;
      tally.last_finish = now;
      submit_next(job);
      if (tally.finished == report.frames) tally.all_done.notify_all();
    };
    {
      std::lock_guard lock(tally.mutex);
      for (int w = 0; w < options.in_flight_per_job; ++w) {
        for (int job = 0; job < options.jobs; ++job) submit_next(job);
      }
    }
    std::unique_lock lock(tally.mutex);
    tally.all_done.wait(lock, [&] { return tally.finished == report.frames; });
  }
  sampler.request_stop();
  sampler.join();
  take_sample();

  report.wall_seconds = std::chrono::duration<double>(tally.last_finish - start).count();
  report.throughput_fps = report.wall_seconds > 0 ? report.frames_done / report.wall_seconds : 0;
  fill_latency(report, tally.latencies);
  if (report.frames_done > 0) {
    report.mean_gate_wait_ms = 1000.0 * tally.wait_seconds / report.frames_done;
    report.mean_segment_ms = 1000.0 * tally.segment_seconds / report.frames_done;
  }
  if (options.stage_times) {
    StageTimes per_frame;
    for (std::size_t i = 0; i < kStageCount && report.frames_done > 0; ++i) {
      per_frame.seconds[i] = tally.stages.seconds[i] / report.frames_done;
    }
    report.stage_seconds_per_frame = per_frame;
  }
  for (const auto& [name, after] : batch_totals()) {
    const BatchStats& before = batches_before.at(name);
    if (after.batches > before.batches) {
      report.mean_batch[name] = static_cast<double>(after.inputs - before.inputs) /
                                static_cast<double>(after.batches - before.batches);
    }
  }
  report.first_errors.assign(tally.errors.begin(), tally.errors.end());
  // Counts are summed over the lanes; the peaks are the largest on one card (each has the cap).
  for (auto& lane : lanes) {
    const RecoveryStats recovery_stats = lane->guards.recovery->stats();
    report.oom_events += recovery_stats.oom_events;
    report.retries += recovery_stats.retries;
    report.cpu_fallbacks += recovery_stats.cpu_fallbacks;
    report.over_admission_ooms += recovery_stats.over_admission_ooms;
    report.below_budget_ooms += recovery_stats.below_budget_ooms;
    report.immediate_retries += recovery_stats.immediate_retries;
    report.backoff_ms_total +=
        std::chrono::duration<double, std::milli>(recovery_stats.backoff_time_total).count();
    const GateStats gate_stats = lane->guards.gate->stats();
    report.peak_in_flight += gate_stats.peak_in_flight;
    report.gate_shrinks += gate_stats.shrinks_total;
    report.readmissions += gate_stats.readmitted_total;
    if (lane->guards.tuner) {
      report.tuned_concurrency.push_back(lane->guards.tuner->cap());
      report.tuner_decisions += lane->guards.tuner->decisions();
      for (const LevelEstimate& e : lane->guards.tuner->estimates()) {
        report.tuner_levels.push_back({lane->source.name(), e});
      }
    }
    if (lane->guards.cache) {
      lane->guards.cache_ticker.reset();  // no tick may release after the counts are read
      const CacheStats cache_stats = lane->guards.cache->stats();
      report.cache_releases += cache_stats.releases_total;
      report.cache_release_ms_total +=
          std::chrono::duration<double, std::milli>(cache_stats.release_time_total).count();
    }
    const MemorySnapshot snap = lane->source.device->snapshot();
    report.alloc_retries += snap.num_alloc_retries - lane->alloc_retries_before;
    report.peak_reserved_bytes = std::max(report.peak_reserved_bytes, snap.peak_reserved_bytes);
    report.peak_allocated_bytes = std::max(report.peak_allocated_bytes, snap.peak_allocated_bytes);
  }
  if (lanes.size() == 1) {
    for (const MemorySample& s : samples) {
      report.peak_reserved_bytes = std::max(report.peak_reserved_bytes, s.reserved_bytes);
      report.peak_allocated_bytes = std::max(report.peak_allocated_bytes, s.allocated_bytes);
    }
  }
  for (const MemorySample& s : samples) {
    if (s.gate_limit_bytes > 0 &&
        (report.min_gate_limit_bytes == 0 || s.gate_limit_bytes < report.min_gate_limit_bytes)) {
      report.min_gate_limit_bytes = s.gate_limit_bytes;
    }
  }
  report.samples = std::move(samples);
  return report;
}

}  // namespace segmentor
