// Where a task's time goes, stage by stage (issue 13, target 5): decode, upload, model calls,
// post-processing, encode, write, gate wait.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <string_view>

namespace segmentor {

// Note [Where the time goes]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// The engine knows when a task decodes, waits at the gate and writes; only the model knows where
// its upload ends and its forward pass begins, and the model runs on a slot thread behind the
// MaskModel interface (Note [GPU work runs on slot threads]). Passing a StageTimes* through
// MaskModel::segment would touch every model and every fake for a figure only reports read, so
// the code that runs a stage adds its time to a *sink* installed on the calling thread for the
// duration of one task step (StageSink). With no sink installed, timing a stage is a clock read
// and nothing else. Times add up per task: two models' uploads make one upload figure.
//
// On a GPU the model's stages are measured on the task's stream with CUDA events (StageClock,
// models/stage_clock.h), so "model" is the forward pass as the device ran it, not the time the
// host took to queue its kernels; the events add no synchronisation beyond the mask's own copy
// back to the host.

enum class Stage : std::size_t {
  kDecode,       // file → RGB pixels
  kUpload,       // pixels → the model's input tensor on the device (resize, normalise, copy)
  kModel,        // the forward passes
  kPostprocess,  // output → mask: resample, threshold, YOLO decode, copy back, product mask
  kEncode,       // masks → PNG bytes
  kWrite,        // PNG bytes → files (atomic rename)
  kGateWait,     // waiting for the memory gate (re-admissions after a back-off included)
};
inline constexpr std::size_t kStageCount = 7;

// "decode", "upload", "model", "postprocess", "encode", "write", "gate_wait"
std::string_view to_string(Stage stage);

// Seconds per stage. A plain value type.
struct StageTimes {
  std::array<double, kStageCount> seconds{};

  double& operator[](Stage stage) { return seconds[static_cast<std::size_t>(stage)]; }
  double operator[](Stage stage) const { return seconds[static_cast<std::size_t>(stage)]; }
  StageTimes& operator+=(const StageTimes& other);
};

// Installs `times` as this thread's sink until destroyed (the previous sink comes back then).
// Not copyable; install and destroy on the same thread.
class StageSink {
 public:
  explicit StageSink(StageTimes* times);
  ~StageSink();
  StageSink(const StageSink&) = delete;
  StageSink& operator=(const StageSink&) = delete;

 private:
  StageTimes* previous_;
};

// Adds `seconds` to `stage` of this thread's sink, if one is installed.
void add_stage_time(Stage stage, double seconds);
// Whether this thread has a sink (callers may skip costlier measurements without one).
bool stage_sink_installed();

// Times its own scope into `stage` (host clock).
class ScopedStage {
 public:
  explicit ScopedStage(Stage stage) : stage_(stage), start_(std::chrono::steady_clock::now()) {}
  ~ScopedStage() {
    add_stage_time(
        stage_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  ScopedStage(const ScopedStage&) = delete;
  ScopedStage& operator=(const ScopedStage&) = delete;

 private:
  Stage stage_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace segmentor
