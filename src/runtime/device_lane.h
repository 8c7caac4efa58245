// One device (a GPU, or the CPU on a machine without one) with its models and the memory manager
// that guards them: memory view, admission gate, cache policy (and its ticker), recovery ladder
// and calibration. The runtime builds one per visible GPU.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "config/config.h"
#include "memory/admission_gate.h"
#include "memory/cache_policy.h"
#include "memory/cache_ticker.h"
#include "memory/calibration.h"
#include "memory/concurrency_tuner.h"
#include "memory/device_memory.h"
#include "memory/oom_recovery.h"
#include "pipeline/engine.h"
#include "pipeline/reloadable_model.h"
#include "runtime/lane_guards.h"

namespace segmentor {

struct DeviceLaneOptions {
  bool calibrate = true;          // measure per-task bytes (GPU only)
  bool cache_ticker = true;       // tick the cache policy on a thread of its own (GPU only)
  double inject_oom_rate = 0;     // test-only; Note [Calibrate before injecting]
  bool freeze_cpu_models = true;  // ModelOptions::freeze on a CPU lane (GPU lanes always try)
};

// Members are declared in dependency order so they are destroyed safely. The gate, cache policy,
// ticker, ladder and tuner come from build_lane_guards (runtime/lane_guards.h).
struct DeviceLane {
  std::unique_ptr<DeviceMemory> device;
  // What the models' weights hold on the device, as registered with the gate at load (model name
  // → bytes; "models" holds what loading took beyond the models' own figures).
  std::map<std::string, std::int64_t> resident;
  std::unique_ptr<AdmissionGate> gate;
  std::unique_ptr<CachePolicy> cache;
  std::unique_ptr<CacheTicker> cache_ticker;  // null on the CPU or when disabled
  std::unique_ptr<OomRecovery> recovery;
  std::unique_ptr<ConcurrencyTuner> tuner;  // CONCURRENCY_TUNING=throughput on a GPU, else null
  CalibrationTable calibration;
  std::unique_ptr<ModelSet> lane;
  // MODEL_IDLE_UNLOAD_SECONDS > 0 on a GPU: this lane's models (owned by `lane`), for the
  // runtime's reaper.
  std::vector<ReloadableModel*> reloadable_models;
  // Every engine's GPU calls on this lane (Note [Slot threads outlive engines]); declared after
  // the models so that its threads are joined before the models they call are destroyed.
  std::unique_ptr<SlotThreads> slot_threads = std::make_unique<SlotThreads>();

  const std::string& name() const { return lane->name; }
  LaneView view() const;
};

// Note [A batch must pay for itself] (pipeline/calibrate.h): the most inputs one forward pass of
// a GPU model takes, MAX_MODEL_BATCH but at most half of MAX_CONCURRENT_IMAGES, so that one batch
// can form while the one before it runs (at 8 admitted with batches up to 8 the mean batch was 4
// and batching gained nothing; at 16 it was 7.8 and gave 0.93–0.97 of the models' ceiling).
int gpu_batch_cap(const Config& config);

// Loads the models on `device` ("cuda:N" or "cpu", already resolved), caps the allocator at
// GPU_MEMORY_LIMIT_MB, builds the gate, cache policy and ladder from `config`, calibrates, and
// with MODEL_IDLE_UNLOAD_SECONDS wraps the models for idle unload. Errors name the device.
Result<std::unique_ptr<DeviceLane>> build_device_lane(const Config& config,
                                                      const std::string& device,
                                                      const DeviceLaneOptions& options);

// A lane with the models alone (no memory manager): the CPU fallback. `freeze_cpu` as in
// DeviceLaneOptions::freeze_cpu_models.
Result<std::unique_ptr<ModelSet>> load_model_set(const Config& config, const std::string& device,
                                                 bool freeze_cpu);

}  // namespace segmentor
