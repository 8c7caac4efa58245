#include "app/runtime.h"

#include <spdlog/spdlog.h>

#include "memory/host_memory.h"
#include "models/model_loader.h"
#include "pipeline/calibrate.h"
#ifdef SEGMENTOR_WITH_CUDA
#include "memory/cuda_device_memory.h"
#endif

namespace segmentor {

namespace {

Result<std::unique_ptr<Lane>> load_lane(const Config& config, const std::string& device,
                                        double inject_oom_rate) {
  ModelOptions options;
  options.device = device;
  options.use_fp16 = config.use_fp16;
  options.cpu_threads = config.cpu_threads;
  options.inject_oom_rate = inject_oom_rate;
  options.cuda_streams = config.cuda_streams;
  auto lane = std::make_unique<Lane>();
  lane->name = device;
  lane->serialize = device == "cpu";
  SEGMENTOR_ASSIGN_OR_RETURN(auto fg_path,
                             resolve_model(config.foreground_model, config.model_cache));
  SEGMENTOR_ASSIGN_OR_RETURN(lane->foreground, load_mask_model(fg_path, options));
  if (config.people_model != "none") {
    SEGMENTOR_ASSIGN_OR_RETURN(auto people_path,
                               resolve_model(config.people_model, config.model_cache));
    SEGMENTOR_ASSIGN_OR_RETURN(lane->people, load_mask_model(people_path, options));
  }
  return lane;
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
  if (config.model_idle_unload_seconds > 0) {
    spdlog::warn("MODEL_IDLE_UNLOAD_SECONDS={} is not implemented yet: models stay loaded",
                 config.model_idle_unload_seconds);
  }
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
  SEGMENTOR_ASSIGN_OR_RETURN(runtime->primary, load_lane(config, device, 0.0));
  const std::int64_t after = runtime->device->snapshot().allocated_bytes;
  record_resident(runtime->calibration, "models", before, after);
  runtime->uses_test_models =
      runtime->primary->foreground->info().is_test_model ||
      (runtime->primary->people && runtime->primary->people->info().is_test_model);
  if (options.cpu_fallback && device != "cpu") {
    SEGMENTOR_ASSIGN_OR_RETURN(runtime->cpu_lane, load_lane(config, "cpu", 0.0));
  }

  AdmissionGateOptions gate_options;
  gate_options.memory_threshold = config.gpu_memory_threshold;
  gate_options.min_concurrent = config.min_concurrent_images;
  gate_options.max_concurrent = config.max_concurrent_images;
  SEGMENTOR_ASSIGN_OR_RETURN(runtime->gate,
                             AdmissionGate::create(gate_options, runtime->device.get()));
  runtime->gate->register_resident("models", runtime->calibration.resident_bytes());

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
    SEGMENTOR_ASSIGN_OR_RETURN(runtime->primary, load_lane(config, device, inject));
    runtime->device->release_cache();
    spdlog::warn("fault injection on: {:.0f} % of model calls on {} fail with out-of-memory",
                 inject * 100.0, device);
  }
  return runtime;
}

}  // namespace segmentor
