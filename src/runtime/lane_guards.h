// The memory manager that guards one lane's models: admission gate, cache policy (and its ticker),
// recovery ladder and concurrency tuner, built from the configuration in one place. `run` and
// `serve` build one set per lane at start-up (runtime/device_lane.h); `bench` builds a fresh set
// per run through the same function, changing only what its gate mode says (Note [Bench gate
// modes]), so a bench figure describes what production runs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"
#include "config/config.h"
#include "memory/admission_gate.h"
#include "memory/cache_policy.h"
#include "memory/cache_ticker.h"
#include "memory/concurrency_tuner.h"
#include "memory/device_memory.h"
#include "memory/oom_recovery.h"

namespace segmentor {

struct LaneGuardOptions {
  AdmissionGateOptions gate;
  RecoveryOptions recovery;
  bool cache_policy = true;  // false: no idle, pressure or every-N releases (legacy bench mode)
  bool cache_ticker = true;  // tick the cache policy on a thread of its own
  bool release_after_oom = true;  // false: the ladder's cache release does nothing (legacy)
  bool concurrency_tuner = true;  // as CONCURRENCY_TUNING says; false: never a tuner
};

// GPU_MEMORY_THRESHOLD=1.0 is the rollback switch that turns the memory gate off (admission by
// count alone; Note [Gate arithmetic], count only).
inline bool gate_counts_only(const Config& config) { return config.gpu_memory_threshold >= 1.0; }

// The settings `run` and `serve` use: GPU_MEMORY_THRESHOLD, MIN/MAX_CONCURRENT_IMAGES,
// RETRY_ON_OOM, MAX_OOM_RETRIES (the gate counts only at a threshold of 1.0), with the cache
// policy, its ticker and the tuner on.
LaneGuardOptions lane_guard_options(const Config& config);

// Members are declared in dependency order so they are destroyed safely. Owns everything but the
// device, which must outlive it.
struct LaneGuards {
  std::unique_ptr<DeviceMemory> no_release;  // release_after_oom = false: the ladder's view
  std::unique_ptr<AdmissionGate> gate;
  std::unique_ptr<CachePolicy> cache;         // null without a cache policy
  std::unique_ptr<CacheTicker> cache_ticker;  // null without a policy or a ticker
  std::unique_ptr<OomRecovery> recovery;
  std::unique_ptr<ConcurrencyTuner> tuner;  // null unless CONCURRENCY_TUNING=throughput
};

// Builds the guards on `device` and registers `resident` (model name → bytes its weights hold)
// with the gate. GPU_CLEANUP_EVERY_N and CONCURRENCY_TUNING come from `config`.
Result<LaneGuards> build_lane_guards(const Config& config, DeviceMemory& device,
                                     const std::map<std::string, std::int64_t>& resident,
                                     const LaneGuardOptions& options);

// CONCURRENCY_TUNING=throughput: a tuner that sets `gate`'s concurrency cap (which must outlive
// it); otherwise null.
Result<std::unique_ptr<ConcurrencyTuner>> make_concurrency_tuner(const Config& config,
                                                                 AdmissionGate& gate);

}  // namespace segmentor
