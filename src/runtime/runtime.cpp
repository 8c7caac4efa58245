#include "runtime/runtime.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <future>

#include "common/elapsed.h"
#include "memory/device_memory.h"
#include "models/model_loader.h"
#include "runtime/slot_warmup.h"

namespace segmentor {

std::vector<LaneView> Runtime::lane_views() const {
  std::vector<LaneView> guarded;
  for (const auto& lane : lanes) guarded.push_back(lane->view());
  return guarded;
}

std::vector<ReloadableModel*> Runtime::reloadable_models() const {
  std::vector<ReloadableModel*> models;
  for (const auto& lane : lanes) {
    models.insert(models.end(), lane->reloadable_models.begin(), lane->reloadable_models.end());
  }
  return models;
}

RecoveryStats Runtime::recovery_stats() const {
  RecoveryStats total;
  for (const auto& lane : lanes) total += lane->recovery->stats();
  return total;
}

std::string Runtime::describe() const {
  std::string text;
  for (const auto& lane : lanes) text += (text.empty() ? "" : " + ") + lane->name();
  const ModelSet& primary = *first().lane;
  if (primary.foreground && primary.foreground->info().fp16) text += " (fp16)";
  text += ", models " + primary.foreground->info().name;
  text += primary.people ? " + " + primary.people->info().name : " (no people model)";
  if (primary.person_detector) text += " + " + primary.person_detector->info().name;
  text += cpu_lane ? ", CPU fallback on" : ", no CPU fallback";
  return text;
}

namespace {

// " 0.05 s with isnet-medium, 0.96 s with mediapipe-selfie" (means over the slots).
std::string describe_call_times(const std::map<std::string, double>& means) {
  std::string out;
  for (const auto& [model, seconds] : means) {
    out += fmt::format("{} {:.2f} s with {}", out.empty() ? "" : ",", seconds, model);
  }
  return out.empty() ? " nothing" : out;
}

}  // namespace

// Note [A fast start]
// ~~~~~~~~~~~~~~~~~~~
// Start to first mask is what a user of `run` and a scaled-up replica of `serve` wait for. The
// CPU fallback lane serves only the rare task whose GPU retries ran out, so it is loaded on a
// thread of its own while the GPU lanes load and calibrate, and it is not frozen: freezing runs
// reference forwards at full size on the CPU and pays only after ~28 images there (Note [Freezing
// pays only for many images on the CPU], run_command.cpp), which a fallback lane rarely sees.
// The GPU lanes' slots are then warmed (Note [Warm every slot before ready]). Each part's time
// is logged, so a slow start says where it went.
Result<std::unique_ptr<Runtime>> build_runtime(const Config& config,
                                               const RuntimeOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  auto runtime = std::make_unique<Runtime>();
  configure_torch_threads(config.cpu_threads);
  const std::string requested = options.device.empty() ? config.device : options.device;
  SEGMENTOR_ASSIGN_OR_RETURN(const std::vector<std::string> devices,
                             resolve_lane_devices(requested));
  DeviceLaneOptions lane_options;
  lane_options.calibrate = options.calibrate;
  lane_options.cache_ticker = options.cache_ticker;
  lane_options.inject_oom_rate = options.inject_oom_rate.value_or(config.inject_oom_rate);
  lane_options.freeze_cpu_models = options.freeze_cpu_models;
  double cpu_fallback_seconds = 0;  // declared first: the future below joins before it goes
  std::future<Result<std::unique_ptr<ModelSet>>> cpu_fallback;
  if (options.cpu_fallback && devices.front() != "cpu") {
    cpu_fallback = std::async(std::launch::async, [&config, &cpu_fallback_seconds] {
      const auto loading = std::chrono::steady_clock::now();
      auto models = load_model_set(config, "cpu", /*freeze_cpu=*/false);
      cpu_fallback_seconds = seconds_since(loading);
      return models;
    });
  }
  for (const std::string& device : devices) {
    const auto loading = std::chrono::steady_clock::now();
    SEGMENTOR_ASSIGN_OR_RETURN(auto lane, build_device_lane(config, device, lane_options));
    spdlog::info("start-up: {} loaded{} in {:.2f} s", device,
                 lane_options.calibrate && device != "cpu" ? " and calibrated" : "",
                 seconds_since(loading));
    runtime->lanes.push_back(std::move(lane));
  }
  if (devices.size() > 1) {
    spdlog::info("DEVICE={}: {} GPU lanes, each with its own gate and calibration", requested,
                 devices.size());
  }
  const ModelSet& primary = *runtime->first().lane;
  runtime->uses_test_models =
      primary.foreground->info().is_test_model ||
      (primary.people && primary.people->info().is_test_model) ||
      (primary.person_detector && primary.person_detector->info().is_test_model);
  if (cpu_fallback.valid()) {
    SEGMENTOR_ASSIGN_OR_RETURN(runtime->cpu_lane, cpu_fallback.get());
    spdlog::info("start-up: CPU fallback lane loaded in {:.2f} s (beside the GPU lanes)",
                 cpu_fallback_seconds);
  }
  if (options.warm_slots) {
    for (const auto& lane : runtime->lanes) {
      const WarmupReport warm = warm_slots(*lane, config.max_concurrent_images);
      if (warm.slots + warm.failures == 0) continue;  // a CPU lane: nothing to warm
      spdlog::info(
          "start-up: {} slot(s) of {} warmed{} in {:.2f} s{}; a call on a slot took{}; allocator: "
          "{} cache flush(es), {} reserved after{}",
          warm.slots, lane->name(),
          warm.batch_size > 0 ? ", and batches of 1 to " + std::to_string(warm.batch_size) : "",
          warm.seconds,
          warm.batch_size > 0
              ? fmt::format(" (batch sizes first, {:.2f} s; slots {:.2f} s, the first done after "
                            "{:.2f} s)",
                            warm.batch_seconds, warm.seconds - warm.batch_seconds,
                            warm.first_slot_seconds)
              : fmt::format(" (the first slot done after {:.2f} s)", warm.first_slot_seconds),
          describe_call_times(warm.mean_call_seconds), warm.alloc_retries,
          format_bytes(warm.reserved_bytes_after),
          warm.failures > 0 ? " (" + std::to_string(warm.failures) + " calls failed)" : "");
    }
  }

  if (config.model_idle_unload_seconds > 0 && devices.front() == "cpu") {
    spdlog::info("MODEL_IDLE_UNLOAD_SECONDS={}: models on the CPU stay loaded (host memory)",
                 config.model_idle_unload_seconds);
  }
  const std::vector<ReloadableModel*> models = runtime->reloadable_models();
  if (!models.empty()) {
    const std::chrono::seconds idle(config.model_idle_unload_seconds);
    runtime->model_reaper = std::make_unique<PeriodicThread>(
        [models, idle] {
          for (ReloadableModel* model : models) (void)model->unload_if_idle(idle);
        },
        kModelReaperInterval);
  }
  spdlog::info("start-up: ready after {:.2f} s", seconds_since(start));
  return runtime;
}

}  // namespace segmentor
