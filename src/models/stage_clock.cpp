#include "models/stage_clock.h"

#include <exception>

#ifdef SEGMENTOR_WITH_CUDA
#include <c10/cuda/CUDAStream.h>
#endif

namespace segmentor {

StageClock::StageClock(const c10::Device& device)
    : device_(device),
      active_(stage_sink_installed()),
      exceptions_at_start_(std::uncaught_exceptions()),
      last_(std::chrono::steady_clock::now()) {}

StageClock::~StageClock() {
  // A call that is unwinding (an out-of-memory error, say) reports nothing: its stages did not
  // finish, and waiting on the device now could throw again.
  if (!active_ || std::uncaught_exceptions() > exceptions_at_start_) return;
  try {
    lap(Stage::kPostprocess);
  } catch (...) {  // NOLINT(bugprone-empty-catch): a figure for a report is not worth a crash
  }
}

void StageClock::wait_for_device() const {
#ifdef SEGMENTOR_WITH_CUDA
  if (device_.is_cuda()) c10::cuda::getCurrentCUDAStream(device_.index()).synchronize();
#endif
}

void StageClock::lap(Stage finished) {
  if (!active_) return;
  wait_for_device();
  const auto now = std::chrono::steady_clock::now();
  add_stage_time(finished, std::chrono::duration<double>(now - last_).count());
  last_ = now;
}

}  // namespace segmentor
