// StageClock: times a model call's upload, forward pass and post-processing into the calling
// thread's stage sink (Note [Where the time goes], common/stage_times.h). Internal to the model
// layer: it sees LibTorch.
#pragma once

#include <torch/script.h>

#include <chrono>

#include "common/stage_times.h"

namespace segmentor {

// One model call. lap(stage) closes the stage that ran since the previous lap (or since
// construction); the destructor closes the last one as post-processing. Without a sink on this
// thread it measures nothing and never synchronises.
//
// On a CUDA device a lap first waits for the current stream, so the time lands in the stage whose
// kernels took it rather than in whichever later step happens to wait for them. That costs two
// stream synchronisations per call, only while a sink is installed (`segmentor bench`, unless
// --no-stages).
// Thread-compatible: one clock per call, on the calling thread.
class StageClock {
 public:
  explicit StageClock(const c10::Device& device);
  ~StageClock();
  StageClock(const StageClock&) = delete;
  StageClock& operator=(const StageClock&) = delete;

  void lap(Stage finished);

 private:
  void wait_for_device() const;

  const c10::Device device_;
  const bool active_;
  const int exceptions_at_start_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace segmentor
