#include "runtime/runtime.h"

#include <spdlog/spdlog.h>

#include "models/model_loader.h"

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

Result<std::unique_ptr<Runtime>> build_runtime(const Config& config,
                                               const RuntimeOptions& options) {
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
  for (const std::string& device : devices) {
    SEGMENTOR_ASSIGN_OR_RETURN(auto lane, build_device_lane(config, device, lane_options));
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
  if (options.cpu_fallback && devices.front() != "cpu") {
    SEGMENTOR_ASSIGN_OR_RETURN(runtime->cpu_lane, load_model_set(config, "cpu"));
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
  return runtime;
}

}  // namespace segmentor
