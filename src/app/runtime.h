// Everything a command needs to run tasks, built once from the configuration: the device's
// memory view, the admission gate, the cache policy, the recovery ladder, the lanes with their
// models, and the calibration table. `run`, `serve` and `bench` share it.
#pragma once

#include <chrono>
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
#include "memory/device_memory.h"
#include "memory/oom_recovery.h"
#include "pipeline/engine.h"
#include "pipeline/reloadable_model.h"
#include "common/periodic_thread.h"

namespace segmentor {

// How often the idle-unload reaper looks at the models.
inline constexpr std::chrono::milliseconds kModelReaperInterval{1000};

struct RuntimeOptions {
  std::string device;        // overrides config.device when not empty
  bool calibrate = true;     // measure per-task bytes on a GPU lane at start-up
  bool cpu_fallback = true;  // load the models on the CPU too, for tasks the GPU cannot take
  // Tick the cache policy on a thread of its own (idle and pressure releases) on a GPU device.
  // `bench` turns it off: each run ticks its own policy.
  bool cache_ticker = true;
  // Test-only fault injection on the GPU lane; unset = SEGMENTOR_INJECT_OOM_RATE. Calibration
  // always runs without it (Note [Calibrate before injecting]).
  std::optional<double> inject_oom_rate;
};

// Owns everything; members are declared in dependency order so they are destroyed safely.
struct Runtime {
  std::unique_ptr<DeviceMemory> device;
  std::unique_ptr<AdmissionGate> gate;
  std::unique_ptr<CachePolicy> cache;
  std::unique_ptr<CacheTicker> cache_ticker;  // null on the CPU or when disabled
  std::unique_ptr<OomRecovery> recovery;
  CalibrationTable calibration;
  std::unique_ptr<Lane> primary;
  std::unique_ptr<Lane> cpu_lane;  // null on a CPU-only machine or when disabled
  // MODEL_IDLE_UNLOAD_SECONDS > 0 on a GPU: the primary lane's models (owned by the lane), and
  // the thread that unloads them when idle. Declared last, so the reaper stops first.
  std::vector<ReloadableModel*> reloadable_models;
  std::unique_ptr<PeriodicThread> model_reaper;
  bool uses_test_models = false;

  // "cuda:0 (fp16), models isnet-medium + mediapipe-selfie, CPU fallback on"
  std::string describe() const;
};

// Errors name what failed (a model that is missing says how to fetch it).
Result<std::unique_ptr<Runtime>> build_runtime(const Config& config,
                                               const RuntimeOptions& options = {});

}  // namespace segmentor
