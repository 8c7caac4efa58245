// Everything a command needs to run tasks, built once from the configuration: a lane per visible
// GPU (each with its own memory view, admission gate, cache policy, recovery ladder and
// calibration; runtime/device_lane.h), the CPU fallback lane, and the idle-unload reaper. `run`,
// `serve` and `bench` share it.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/periodic_thread.h"
#include "common/status.h"
#include "config/config.h"
#include "memory/oom_recovery.h"
#include "pipeline/engine.h"
#include "pipeline/reloadable_model.h"
#include "runtime/device_lane.h"

namespace segmentor {

// How often the idle-unload reaper looks at the models.
inline constexpr std::chrono::milliseconds kModelReaperInterval{1000};

struct RuntimeOptions {
  std::string device;        // overrides config.device when not empty
  bool calibrate = true;     // measure per-task bytes on each GPU lane at start-up
  bool cpu_fallback = true;  // load the models on the CPU too, for tasks the GPU cannot take
  // Tick each GPU lane's cache policy on a thread of its own (idle and pressure releases).
  // `bench` turns it off: each run ticks its own policy.
  bool cache_ticker = true;
  // Test-only fault injection on the GPU lanes; unset = SEGMENTOR_INJECT_OOM_RATE. Calibration
  // always runs without it (Note [Calibrate before injecting]).
  std::optional<double> inject_oom_rate;
  // Freeze models loaded on the CPU (Note [Freezing TorchScript modules]). `run` turns it off for
  // a few images: Note [Freezing pays only for many images on the CPU] (run_command.cpp).
  bool freeze_cpu_models = true;
  // Run each model once on every slot thread of every GPU lane before returning (Note [Warm every
  // slot before ready], runtime/slot_warmup.h). `plan` turns it off (it only calibrates), and so
  // does `run` (a batch job: its total time counts, not its first frames' latency).
  bool warm_slots = true;
};

// Owns everything; members are declared in dependency order so they are destroyed safely.
struct Runtime {
  // One per visible GPU (DEVICE=auto or cuda), or the one DEVICE names; on a machine without a
  // GPU, the CPU lane with a host-memory gate. Never empty.
  std::vector<std::unique_ptr<DeviceLane>> lanes;
  std::unique_ptr<ModelSet> cpu_lane;  // null on a CPU-only machine or when disabled
  // MODEL_IDLE_UNLOAD_SECONDS > 0 on a GPU: the thread that unloads every lane's idle models.
  // Declared last, so it stops first.
  std::unique_ptr<PeriodicThread> model_reaper;
  bool uses_test_models = false;

  DeviceLane& first() const { return *lanes.front(); }
  std::vector<LaneView> lane_views() const;
  std::vector<ReloadableModel*> reloadable_models() const;  // every lane's
  RecoveryStats recovery_stats() const;                     // summed over the lanes

  // "cuda:0 + cuda:1 (fp16), models isnet-medium + mediapipe-selfie, CPU fallback on"
  std::string describe() const;
};

// Errors name what failed (a model that is missing says how to fetch it).
Result<std::unique_ptr<Runtime>> build_runtime(const Config& config,
                                               const RuntimeOptions& options = {});

}  // namespace segmentor
