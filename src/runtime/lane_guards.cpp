#include "runtime/lane_guards.h"

#include <utility>

namespace segmentor {

namespace {

// The legacy bench mode's view of the device: the Python service never released the cache
// mid-run, so the ladder's first rung does nothing there. Everything else is forwarded. Does not
// own `inner`.
class NoReleaseDevice : public DeviceMemory {
 public:
  explicit NoReleaseDevice(DeviceMemory& inner) : inner_(inner) {}
  MemorySnapshot snapshot() override { return inner_.snapshot(); }
  void reset_peak() override { inner_.reset_peak(); }
  std::chrono::nanoseconds release_cache() override { return std::chrono::nanoseconds(0); }
  Status set_process_limit(std::int64_t bytes) override { return inner_.set_process_limit(bytes); }

 private:
  DeviceMemory& inner_;
};

}  // namespace

LaneGuardOptions lane_guard_options(const Config& config) {
  LaneGuardOptions options;
  options.gate.memory_threshold = config.gpu_memory_threshold;
  options.gate.min_concurrent = config.min_concurrent_images;
  options.gate.max_concurrent = config.max_concurrent_images;
  options.gate.count_only = gate_counts_only(config);
  options.recovery.retry_on_oom = config.retry_on_oom;
  options.recovery.max_oom_retries = config.max_oom_retries;
  return options;
}

Result<std::unique_ptr<ConcurrencyTuner>> make_concurrency_tuner(const Config& config,
                                                                 AdmissionGate& gate) {
  if (config.concurrency_tuning != "throughput") return std::unique_ptr<ConcurrencyTuner>();
  ConcurrencyTunerOptions options;
  options.min_concurrent = config.min_concurrent_images;
  options.max_concurrent = config.max_concurrent_images;
  return ConcurrencyTuner::create(options, [&gate](int cap) { gate.set_concurrency_cap(cap); });
}

Result<LaneGuards> build_lane_guards(const Config& config, DeviceMemory& device,
                                     const std::map<std::string, std::int64_t>& resident,
                                     const LaneGuardOptions& options) {
  LaneGuards guards;
  SEGMENTOR_ASSIGN_OR_RETURN(guards.gate, AdmissionGate::create(options.gate, &device));
  for (const auto& [name, bytes] : resident) guards.gate->register_resident(name, bytes);
  if (options.cache_policy) {
    CachePolicyOptions cache_options;
    cache_options.cleanup_every_n = config.gpu_cleanup_every_n;
    SEGMENTOR_ASSIGN_OR_RETURN(guards.cache, CachePolicy::create(cache_options, &device));
    if (options.cache_ticker) guards.cache_ticker = std::make_unique<CacheTicker>(*guards.cache);
  }
  DeviceMemory* recovery_device = &device;
  if (!options.release_after_oom) {
    guards.no_release = std::make_unique<NoReleaseDevice>(device);
    recovery_device = guards.no_release.get();
  }
  SEGMENTOR_ASSIGN_OR_RETURN(
      guards.recovery, OomRecovery::create(options.recovery, recovery_device, guards.gate.get(),
                                           guards.cache.get()));
  if (options.concurrency_tuner) {
    SEGMENTOR_ASSIGN_OR_RETURN(guards.tuner, make_concurrency_tuner(config, *guards.gate));
  }
  return guards;
}

}  // namespace segmentor
