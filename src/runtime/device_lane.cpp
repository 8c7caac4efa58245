#include "runtime/device_lane.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/elapsed.h"
#include "memory/host_memory.h"
#include "models/model_loader.h"
#include "pipeline/calibrate.h"
#include "runtime/lane_cache.h"
#ifdef SEGMENTOR_WITH_CUDA
#include "memory/cuda_device_memory.h"
#endif

namespace segmentor {

namespace {

ModelOptions model_options(const Config& config, const std::string& device, double inject_oom_rate,
                           bool freeze_cpu = true,
                           const std::map<std::string, LoadChecks>& known_checks = {}) {
  ModelOptions options;
  options.known_checks = known_checks;
  options.freeze = freeze_cpu || device != "cpu";
  options.device = device;
  options.use_fp16 = config.use_fp16;
  options.cpu_threads = config.cpu_threads;
  options.inject_oom_rate = inject_oom_rate;
  options.cuda_streams = config.cuda_streams;
  options.person_min_score = config.person_min_score;
  // Note [Batching admitted tasks] (models/forward_batcher.h): the CPU lane runs one task at a
  // time, so it has nothing to batch.
  options.max_batch = device == "cpu" ? 1 : gpu_batch_cap(config);
  return options;
}

// Where calibration says each model's passes run, applied to (re)loaded models: its batch limit
// (Note [Batch sizes within the reserved bytes], pipeline/calibrate.h), a thread of its own
// (Note [Dear first calls on a new thread]) and padded batches (Note [Flat batches run padded]).
void apply_calibrated_passes(ModelSet& lane, const CalibrationTable& calibration) {
  for (MaskModel* model : lane.models()) {
    const auto found = calibration.batch_limits().find(model->info().name);
    if (found != calibration.batch_limits().end()) model->limit_batch(found->second);
    if (calibration.own_thread().contains(model->info().name)) model->run_passes_on_own_thread();
    if (calibration.padded().contains(model->info().name)) model->pad_batches();
  }
}

// Logs which models batch, and up to what (Note [Batching admitted tasks]).
void log_batching(const ModelSet& lane, const Config& config) {
  for (const MaskModel* model : lane.models()) {
    if (model->max_batch() > 1) {
      spdlog::info("model {} on {}: forward passes of up to {} tasks at once", model->info().name,
                   lane.name, model->max_batch());
    } else if (model->passes_on_own_thread()) {
      spdlog::info(
          "model {} on {}: forward passes one at a time on a thread of its own (Note [Dear first "
          "calls on a new thread])",
          model->info().name, lane.name);
    } else if (config.max_model_batch > 1 && lane.name != "cpu") {
      spdlog::info(
          "model {} on {}: unbatched (its manifest, the load-time check that batch 2 gives what "
          "two single passes give, calibration's memory check or MAX_CONCURRENT_IMAGES=1)",
          model->info().name, lane.name);
    }
  }
}

// A lane's models, and what each one's weights hold on the device (when `memory` is given: the
// allocator's allocated bytes before and after its load).
struct LoadedLane {
  std::unique_ptr<ModelSet> lane;
  LaneModelFiles files;
  std::map<std::string, std::int64_t> resident_bytes;  // model name -> bytes
};

Result<LoadedLane> load_lane(const Config& config, const LaneModelFiles& files,
                             const std::string& device, double inject_oom_rate,
                             DeviceMemory* memory = nullptr, bool freeze_cpu = true,
                             const std::map<std::string, LoadChecks>& known_checks = {}) {
  const ModelOptions options =
      model_options(config, device, inject_oom_rate, freeze_cpu, known_checks);
  LoadedLane loaded;
  loaded.files = files;
  loaded.lane = std::make_unique<ModelSet>();
  loaded.lane->name = device;
  loaded.lane->serialize = device == "cpu";
  auto load = [&](const std::filesystem::path& path) -> Result<std::unique_ptr<MaskModel>> {
    const std::int64_t before = memory ? memory->snapshot().allocated_bytes : 0;
    SEGMENTOR_ASSIGN_OR_RETURN(auto model, load_mask_model(path, options));
    if (memory) {
      loaded.resident_bytes[model->info().name] =
          std::max<std::int64_t>(0, memory->snapshot().allocated_bytes - before);
    }
    return model;
  };
  SEGMENTOR_ASSIGN_OR_RETURN(loaded.lane->foreground, load(files.foreground));
  if (!files.people.empty()) {
    SEGMENTOR_ASSIGN_OR_RETURN(loaded.lane->people, load(files.people));
  }
  if (!files.detector.empty()) {
    SEGMENTOR_ASSIGN_OR_RETURN(loaded.lane->person_detector, load(files.detector));
    if (loaded.lane->person_detector->info().kind != ModelKind::kPersonDetector) {
      return invalid_argument("PEOPLE_DETECTOR_MODEL_NAME=" + config.people_detector_model +
                              " is a " +
                              std::string(to_string(loaded.lane->person_detector->info().kind)) +
                              " model, not a person_detector");
    }
  }
  return loaded;
}

// MODEL_IDLE_UNLOAD_SECONDS: wraps the lane's models in ReloadableModel (Note [Idle unload]). The
// gate's resident bytes follow each model; the runtime's reaper does the unloading.
void enable_idle_unload(DeviceLane& lane, const Config& config, const LoadedLane& loaded,
                        const ModelOptions& options) {
  const std::chrono::seconds idle(config.model_idle_unload_seconds);
  auto wrap = [&](std::unique_ptr<MaskModel>& slot, const std::filesystem::path& path) {
    const std::string name = slot->info().name;
    const auto found = loaded.resident_bytes.find(name);
    const std::int64_t bytes = found == loaded.resident_bytes.end() ? 0 : found->second;
    AdmissionGate* gate = lane.gate.get();
    CachePolicy* cache = lane.cache.get();
    const std::string device = lane.name();
    ReloadHooks hooks;
    hooks.after_unload = [gate, cache, name, device, idle] {
      gate->unregister_resident(name);
      const auto took = cache->release_now();
      spdlog::info("model {} on {} unused for {} s: unloaded, cache released in {} ms", name,
                   device, idle.count(),
                   std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
    };
    hooks.after_load = [gate, name, device, bytes] {
      gate->register_resident(name, bytes);
      spdlog::info("model {} on {} reloaded ({})", name, device, format_bytes(bytes));
    };
    auto reloadable = std::make_unique<ReloadableModel>(
        std::move(slot), [path, options] { return load_mask_model(path, options); },
        std::move(hooks));
    lane.reloadable_models.push_back(reloadable.get());
    slot = std::move(reloadable);
  };
  wrap(lane.lane->foreground, loaded.files.foreground);
  if (lane.lane->people) wrap(lane.lane->people, loaded.files.people);
  if (lane.lane->person_detector) wrap(lane.lane->person_detector, loaded.files.detector);
}

Result<std::unique_ptr<DeviceMemory>> make_device_memory(const std::string& device) {
  if (device.rfind("cuda", 0) == 0) {
#ifdef SEGMENTOR_WITH_CUDA
    const auto colon = device.find(':');
    const int index = colon == std::string::npos ? 0 : std::stoi(device.substr(colon + 1));
    SEGMENTOR_ASSIGN_OR_RETURN(auto cuda, CudaDeviceMemory::create(index));
    return std::unique_ptr<DeviceMemory>(std::move(cuda));
#else
    return invalid_argument("device " + device + ": this build's LibTorch has no CUDA");
#endif
  }
  return std::unique_ptr<DeviceMemory>(std::make_unique<HostMemory>());
}

// What the lane's models' load-time checks found, by model name (Note [Load checks on disk]).
std::map<std::string, LoadChecks> load_checks_of(const ModelSet& lane) {
  std::map<std::string, LoadChecks> checks;
  for (const MaskModel* model : lane.models()) checks[model->info().name] = model->info().checks;
  return checks;
}

// Note [Dear first calls on a new thread] (pipeline/calibrate.h): each model left unbatched gets
// a thread of its own where a new thread's first call is dear and one thread keeps up with the
// slots.
Status place_unbatched_passes(DeviceLane& lane, const std::string& device, int slots,
                              const std::map<std::string, double>& pass_seconds,
                              double task_pass_seconds) {
  for (MaskModel* model : lane.lane->models()) {
    if (model->passes_on_own_thread()) continue;
    const std::string& name = model->info().name;
    auto first_call = time_first_call_on_new_thread(*model);
    if (!first_call.ok()) {
      return first_call.status().with_context("timing " + name + "'s first call on " + device);
    }
    const double share =
        task_pass_seconds > 0 ? std::min(1.0, pass_seconds.at(name) / task_pass_seconds) : 1.0;
    const bool own = keeps_own_thread(*first_call, share, slots);
    spdlog::info(
        "passes of {} on {}: {}; its first call on a new thread takes {:.2f} s (over {:.2f} s is "
        "dear), and one thread would carry {} slots x {:.0f} % of a task's GPU time = {:.2f} "
        "(at most {:.2f}; Note [Dear first calls on a new thread])",
        name, device, own ? "on a thread of its own" : "side by side on the slots' threads",
        *first_call, kDearFirstCallSeconds, slots, share * 100, slots * share, kMaxOwnThreadLoad);
    if (own) {
      model->run_passes_on_own_thread();
      lane.calibration.set_own_thread(name);
    }
  }
  return Status::Ok();
}

// Calibrates the lane, or takes the table stored for the same key (Note [Calibration on disk]).
Status calibrate_lane(DeviceLane& lane, const std::string& device, int slots,
                      const LaneCache& cache) {
  if (const CalibrationTable* stored = cache.calibration()) {
    lane.calibration.take_all_but_resident_bytes(*stored);
    apply_calibrated_passes(*lane.lane, lane.calibration);
    spdlog::info("calibration on {} from {} (same card, driver, LibTorch, models, settings):\n{}",
                 device, cache.path(), lane.calibration.describe());
    return Status::Ok();
  }
  Segmenter segmenter(*lane.lane->foreground, lane.lane->people.get(),
                      lane.lane->person_detector.get());
  SEGMENTOR_RETURN_IF_ERROR(calibrate_segmenter(segmenter, *lane.device, lane.calibration)
                                .with_context("calibrating on " + device));
  // Note [A batch must pay for itself]: a task's GPU time, for each model's share of it.
  double task_pass_seconds = 0;
  std::map<std::string, double> pass_seconds;
  for (MaskModel* model : lane.lane->models()) {
    auto seconds = time_single_pass(*model);
    if (!seconds.ok()) {
      return seconds.status().with_context("timing " + model->info().name + " on " + device);
    }
    pass_seconds[model->info().name] = *seconds;
    task_pass_seconds += *seconds;
  }
  // Note [Batch sizes within the reserved bytes]: each task of a batch may use what the gate
  // reserves for it, at least the smallest task's bytes.
  std::int64_t smallest_task_bytes = 0;
  for (const CalibrationRow& row : lane.calibration.rows()) {
    if (smallest_task_bytes == 0 || row.peak_bytes < smallest_task_bytes) {
      smallest_task_bytes = row.peak_bytes;
    }
  }
  for (MaskModel* model : lane.lane->models()) {
    if (model->max_batch() <= 1) continue;
    auto measured =
        calibrate_batch_limit(*model, *lane.device, task_pass_seconds, smallest_task_bytes);
    if (!measured.ok()) {
      return measured.status().with_context("calibrating batches of " + model->info().name +
                                            " on " + device);
    }
    const BatchCalibration& batches = *measured;
    lane.calibration.set_batch_limit(model->info().name, batches.limit);
    if (batches.padded) lane.calibration.set_padded(model->info().name);
    std::string peaks;
    for (const auto& [batch, bytes] : batches.peaks) {
      peaks += (peaks.empty() ? "" : ", ") + std::to_string(batch) + ": " + format_bytes(bytes);
    }
    std::string passes;
    for (const auto& [batch, seconds] : batches.pass_seconds) {
      passes += fmt::format("{}{}: {:.1f} ms", passes.empty() ? "" : ", ", batch, seconds * 1e3);
    }
    if (batches.limit <= 1 && batches.pass_seconds.empty()) {
      // Stopped by the memory check (Note [Batch sizes within the reserved bytes]): nothing timed.
      const auto& [batch, bytes] = batches.peaks.back();
      const std::int64_t single = batches.peaks.front().second;
      spdlog::info(
          "batches of {} on {}: none; {} (peak by batch size: {}; Note [Batch sizes within the "
          "reserved bytes]), so its passes run side by side unbatched",
          model->info().name, device,
          batch > 1 ? fmt::format("batch {} needs {}, more than {} times the {} a task may use",
                                  batch, format_bytes(bytes), batch,
                                  format_bytes(std::max(single, smallest_task_bytes)))
                    : std::string("batch 2 does not fit the card"),
          peaks);
    } else if (batches.pays) {
      spdlog::info(
          "batches of {} on {}: up to {}{} (peak by batch size: {}; pass: {}; {:.2f}x the frames "
          "per second of batch 1, {:.0f} % of a task's GPU time, so up to {:.0f} % more tasks)",
          model->info().name, device, batches.limit,
          batches.padded ? ", each padded to that (Note [Flat batches run padded])" : "", peaks,
          passes, batches.speedup, batches.share * 100, batches.gain * 100);
    } else {
      spdlog::info(
          "batches of {} on {}: none; they fit (peak by batch size: {}) but run {:.2f}x the "
          "frames per second of batch 1 (pass: {}) in {:.0f} % of a task's GPU time: at most "
          "{:.0f} % more tasks, below the {:.2f}x and {:.0f} % it takes, so its passes run side "
          "by side unbatched (Note [A batch must pay for itself])",
          model->info().name, device, peaks, batches.speedup, passes, batches.share * 100,
          batches.gain * 100, kMinBatchSpeedup, kMinBatchGain * 100);
    }
  }
  SEGMENTOR_RETURN_IF_ERROR(
      place_unbatched_passes(lane, device, slots, pass_seconds, task_pass_seconds));
  spdlog::info("calibration on {}:\n{}", device, lane.calibration.describe());
  return Status::Ok();
}

}  // namespace

int gpu_batch_cap(const Config& config) {
  return std::max(1, std::min(config.max_model_batch, config.max_concurrent_images / 2));
}

LaneView DeviceLane::view() const {
  return LaneView{lane.get(),  gate.get(),  recovery.get(),    &calibration,
                  cache.get(), tuner.get(), slot_threads.get()};
}

Result<std::unique_ptr<ModelSet>> load_model_set(const Config& config, const std::string& device,
                                                 bool freeze_cpu) {
  SEGMENTOR_ASSIGN_OR_RETURN(const LaneModelFiles files, lane_model_files(config));
  SEGMENTOR_ASSIGN_OR_RETURN(LoadedLane loaded,
                             load_lane(config, files, device, 0.0, nullptr, freeze_cpu));
  return std::move(loaded.lane);
}

Result<std::unique_ptr<DeviceLane>> build_device_lane(const Config& config,
                                                      const std::string& device,
                                                      const DeviceLaneOptions& options) {
  auto lane = std::make_unique<DeviceLane>();
  const bool gpu = device != "cpu";
  const auto device_start = std::chrono::steady_clock::now();
  SEGMENTOR_ASSIGN_OR_RETURN(lane->device, make_device_memory(device));
  if (config.gpu_memory_limit_mb > 0) {
    SEGMENTOR_RETURN_IF_ERROR(
        lane->device->set_process_limit(config.gpu_memory_limit_mb * 1024 * 1024));
  }
  // Note [A fast start] (runtime.cpp): on a GPU this is where the CUDA context is made.
  spdlog::info("start-up: {} memory view ready in {:.2f} s", device, seconds_since(device_start));

  // Note [Load checks on disk]: what an earlier start found for these files, before they load. A
  // CPU lane that does not freeze runs no checks and has no calibration: nothing to look up.
  SEGMENTOR_ASSIGN_OR_RETURN(const LaneModelFiles files, lane_model_files(config));
  LaneCache cache;
  if (gpu || options.freeze_cpu_models) cache = LaneCache::open(config, device, files.all());

  const std::int64_t before = lane->device->snapshot().allocated_bytes;
  SEGMENTOR_ASSIGN_OR_RETURN(LoadedLane loaded,
                             load_lane(config, files, device, 0.0, lane->device.get(),
                                       options.freeze_cpu_models, cache.load_checks()));
  lane->lane = std::move(loaded.lane);
  for (const MaskModel* model : lane->lane->models()) {
    const ModelInfo& info = model->info();
    spdlog::info(
        "start-up: model {} on {}: read {:.2f} s, freeze {:.2f} s, batch check {:.2f} s ({}; {})",
        info.name, device, info.load_seconds.read, info.load_seconds.freeze_check,
        info.load_seconds.batch_check,
        info.checks_run     ? "checked now"
        : info.checks_known ? "checks found earlier, no probe passes"
                            : "no checks",
        describe(info.checks));
  }
  const std::int64_t after = lane->device->snapshot().allocated_bytes;
  record_resident(lane->calibration, "models", before, after);

  // Each model's weights on their own, so an idle unload can take one out of the arithmetic.
  // What loading held beyond the models' own figures (the CUDA context's first allocations) stays
  // under "models".
  std::int64_t per_model_total = 0;
  for (const auto& [name, bytes] : loaded.resident_bytes) {
    lane->resident[name] = bytes;
    per_model_total += bytes;
  }
  lane->resident["models"] =
      std::max<std::int64_t>(0, lane->calibration.resident_bytes() - per_model_total);

  LaneGuardOptions guard_options = lane_guard_options(config);
  guard_options.cache_ticker = options.cache_ticker && gpu;
  guard_options.concurrency_tuner = gpu;
  SEGMENTOR_ASSIGN_OR_RETURN(
      LaneGuards guards, build_lane_guards(config, *lane->device, lane->resident, guard_options));
  lane->gate = std::move(guards.gate);
  lane->cache = std::move(guards.cache);
  lane->cache_ticker = std::move(guards.cache_ticker);
  lane->recovery = std::move(guards.recovery);
  lane->tuner = std::move(guards.tuner);
  if (guard_options.gate.count_only) {
    spdlog::warn(
        "GPU_MEMORY_THRESHOLD=1.0: the memory gate is off on {}; tasks are admitted by count "
        "alone (at most MAX_CONCURRENT_IMAGES={}), whatever memory they need (rollback mode)",
        device, config.max_concurrent_images);
  }

  if (options.calibrate && gpu) {
    const auto calibration_start = std::chrono::steady_clock::now();
    SEGMENTOR_RETURN_IF_ERROR(calibrate_lane(*lane, device, config.max_concurrent_images, cache));
    spdlog::info("start-up: {} calibrated in {:.2f} s", device, seconds_since(calibration_start));
  }
  const std::map<std::string, LoadChecks> checks = load_checks_of(*lane->lane);
  cache.store(CachedMeasurements{lane->calibration, checks});

  // Note [Calibrate before injecting]: fault injection (a test-only knob) would make calibration
  // fail, and a calibrated table is what the injected run is meant to exercise. So the GPU lane
  // is loaded clean, calibrated, and only then loaded again with injection on. The CPU fallback
  // lane never injects: it is where the ladder ends.
  if (options.inject_oom_rate > 0.0) {
    lane->lane.reset();
    SEGMENTOR_ASSIGN_OR_RETURN(LoadedLane injected,
                               load_lane(config, files, device, options.inject_oom_rate, nullptr,
                                         options.freeze_cpu_models, checks));
    lane->lane = std::move(injected.lane);
    lane->device->release_cache();
    spdlog::warn("fault injection on: {:.0f} % of model calls on {} fail with out-of-memory",
                 options.inject_oom_rate * 100.0, device);
  }
  if (config.model_idle_unload_seconds > 0 && gpu) {
    enable_idle_unload(
        *lane, config, loaded,
        model_options(config, device, options.inject_oom_rate, options.freeze_cpu_models, checks));
  }
  apply_calibrated_passes(*lane->lane, lane->calibration);  // the injected reload needs them again
  log_batching(*lane->lane, config);
  return lane;
}

}  // namespace segmentor
