#include "app/runtime.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <vector>

#include "memory/host_memory.h"
#include "models/model_loader.h"
#include "pipeline/calibrate.h"
#include "pipeline/reloadable_model.h"
#ifdef SEGMENTOR_WITH_CUDA
#include "memory/cuda_device_memory.h"
#endif

namespace segmentor {

namespace {

ModelOptions model_options(const Config& config, const std::string& device,
                           double inject_oom_rate) {
  ModelOptions options;
  options.device = device;
  options.use_fp16 = config.use_fp16;
  options.cpu_threads = config.cpu_threads;
  options.inject_oom_rate = inject_oom_rate;
  options.cuda_streams = config.cuda_streams;
  return options;
}

// A lane's models, and what each one's weights hold on the device (when `device` is given: the
// allocator's allocated bytes before and after its load).
struct LoadedLane {
  std::unique_ptr<Lane> lane;
  std::filesystem::path foreground_path;
  std::filesystem::path people_path;  // empty without a people model
  std::map<std::string, std::int64_t> resident_bytes;  // model name -> bytes
};

Result<LoadedLane> load_lane(const Config& config, const std::string& device,
                             double inject_oom_rate, DeviceMemory* memory = nullptr) {
  const ModelOptions options = model_options(config, device, inject_oom_rate);
  LoadedLane loaded;
  loaded.lane = std::make_unique<Lane>();
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
  SEGMENTOR_ASSIGN_OR_RETURN(loaded.foreground_path,
                             resolve_model(config.foreground_model, config.model_cache));
  SEGMENTOR_ASSIGN_OR_RETURN(loaded.lane->foreground, load(loaded.foreground_path));
  if (config.people_model != "none") {
    SEGMENTOR_ASSIGN_OR_RETURN(loaded.people_path,
                               resolve_model(config.people_model, config.model_cache));
    SEGMENTOR_ASSIGN_OR_RETURN(loaded.lane->people, load(loaded.people_path));
  }
  return loaded;
}

// MODEL_IDLE_UNLOAD_SECONDS: wraps the GPU lane's models in ReloadableModel (Note [Idle unload])
// and starts the reaper that unloads them. The gate's resident bytes follow each model.
void enable_idle_unload(Runtime& runtime, const Config& config, const LoadedLane& loaded,
                        const ModelOptions& options) {
  const std::chrono::seconds idle(config.model_idle_unload_seconds);
  auto wrap = [&](std::unique_ptr<MaskModel>& slot, const std::filesystem::path& path) {
    const std::string name = slot->info().name;
    const auto found = loaded.resident_bytes.find(name);
    const std::int64_t bytes = found == loaded.resident_bytes.end() ? 0 : found->second;
    AdmissionGate* gate = runtime.gate.get();
    CachePolicy* cache = runtime.cache.get();
    ReloadHooks hooks;
    hooks.after_unload = [gate, cache, name, idle] {
      gate->unregister_resident(name);
      const auto took = cache->release_now();
      spdlog::info("model {} unused for {} s: unloaded, cache released in {} ms", name,
                   idle.count(), std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
    };
    hooks.after_load = [gate, name, bytes] {
      gate->register_resident(name, bytes);
      spdlog::info("model {} reloaded ({})", name, format_bytes(bytes));
    };
    auto reloadable = std::make_unique<ReloadableModel>(
        std::move(slot), [path, options] { return load_mask_model(path, options); },
        std::move(hooks));
    runtime.reloadable_models.push_back(reloadable.get());
    slot = std::move(reloadable);
  };
  wrap(runtime.primary->foreground, loaded.foreground_path);
  if (runtime.primary->people) wrap(runtime.primary->people, loaded.people_path);
  std::vector<ReloadableModel*> models = runtime.reloadable_models;
  runtime.model_reaper = std::make_unique<PeriodicThread>(
      [models, idle] {
        for (ReloadableModel* model : models) (void)model->unload_if_idle(idle);
      },
      kModelReaperInterval);
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

}  // namespace

std::string Runtime::describe() const {
  std::string text = primary->name;
  if (primary->foreground && primary->foreground->info().fp16) text += " (fp16)";
  text += ", models " + primary->foreground->info().name;
  text += primary->people ? " + " + primary->people->info().name : " (no people model)";
  text += cpu_lane ? ", CPU fallback on" : ", no CPU fallback";
  return text;
}

Result<std::unique_ptr<Runtime>> build_runtime(const Config& config,
                                               const RuntimeOptions& options) {
  auto runtime = std::make_unique<Runtime>();
  configure_torch_threads(config.cpu_threads);
  SEGMENTOR_ASSIGN_OR_RETURN(
      const std::string device,
      resolve_device(options.device.empty() ? config.device : options.device));
  SEGMENTOR_ASSIGN_OR_RETURN(runtime->device, make_device_memory(device));
  if (config.gpu_memory_limit_mb > 0) {
    SEGMENTOR_RETURN_IF_ERROR(
        runtime->device->set_process_limit(config.gpu_memory_limit_mb * 1024 * 1024));
  }

  const std::int64_t before = runtime->device->snapshot().allocated_bytes;
  SEGMENTOR_ASSIGN_OR_RETURN(LoadedLane loaded,
                             load_lane(config, device, 0.0, runtime->device.get()));
  runtime->primary = std::move(loaded.lane);
  const std::int64_t after = runtime->device->snapshot().allocated_bytes;
  record_resident(runtime->calibration, "models", before, after);
  runtime->uses_test_models =
      runtime->primary->foreground->info().is_test_model ||
      (runtime->primary->people && runtime->primary->people->info().is_test_model);
  if (options.cpu_fallback && device != "cpu") {
    SEGMENTOR_ASSIGN_OR_RETURN(LoadedLane cpu, load_lane(config, "cpu", 0.0));
    runtime->cpu_lane = std::move(cpu.lane);
  }

  AdmissionGateOptions gate_options;
  gate_options.memory_threshold = config.gpu_memory_threshold;
  gate_options.min_concurrent = config.min_concurrent_images;
  gate_options.max_concurrent = config.max_concurrent_images;
  SEGMENTOR_ASSIGN_OR_RETURN(runtime->gate,
                             AdmissionGate::create(gate_options, runtime->device.get()));
  // Each model's weights on their own, so an idle unload can take one out of the arithmetic.
  // What loading held beyond the models' own figures (the CUDA context's first allocations) stays
  // under "models".
  std::int64_t per_model_total = 0;
  for (const auto& [name, bytes] : loaded.resident_bytes) {
    runtime->gate->register_resident(name, bytes);
    per_model_total += bytes;
  }
  runtime->gate->register_resident(
      "models", std::max<std::int64_t>(0, runtime->calibration.resident_bytes() - per_model_total));

  CachePolicyOptions cache_options;
  cache_options.cleanup_every_n = config.gpu_cleanup_every_n;
  SEGMENTOR_ASSIGN_OR_RETURN(runtime->cache,
                             CachePolicy::create(cache_options, runtime->device.get()));
  if (options.cache_ticker && device != "cpu") {
    runtime->cache_ticker = std::make_unique<CacheTicker>(*runtime->cache);
  }
  RecoveryOptions recovery_options;
  recovery_options.retry_on_oom = config.retry_on_oom;
  recovery_options.max_oom_retries = config.max_oom_retries;
  SEGMENTOR_ASSIGN_OR_RETURN(runtime->recovery,
                             OomRecovery::create(recovery_options, runtime->device.get(),
                                                 runtime->gate.get(), runtime->cache.get()));

  if (options.calibrate && device != "cpu") {
    Segmenter segmenter(*runtime->primary->foreground, runtime->primary->people.get());
    SEGMENTOR_RETURN_IF_ERROR(
        calibrate_segmenter(segmenter, *runtime->device, runtime->calibration));
    spdlog::info("calibration on {}:\n{}", device, runtime->calibration.describe());
  }

  // Note [Calibrate before injecting]: fault injection (a test-only knob) would make calibration
  // fail, and a calibrated table is what the injected run is meant to exercise. So the GPU lane
  // is loaded clean, calibrated, and only then loaded again with injection on. The CPU fallback
  // lane never injects: it is where the ladder ends.
  const double inject = options.inject_oom_rate.value_or(config.inject_oom_rate);
  if (inject > 0.0) {
    runtime->primary.reset();
    SEGMENTOR_ASSIGN_OR_RETURN(LoadedLane injected, load_lane(config, device, inject));
    runtime->primary = std::move(injected.lane);
    runtime->device->release_cache();
    spdlog::warn("fault injection on: {:.0f} % of model calls on {} fail with out-of-memory",
                 inject * 100.0, device);
  }
  if (config.model_idle_unload_seconds > 0) {
    if (device == "cpu") {
      spdlog::info("MODEL_IDLE_UNLOAD_SECONDS={}: models on the CPU stay loaded (host memory)",
                   config.model_idle_unload_seconds);
    } else {
      enable_idle_unload(*runtime, config, loaded, model_options(config, device, inject));
    }
  }
  return runtime;
}

}  // namespace segmentor
