// Which concurrency slot the calling thread's model calls belong to, so that a CUDA model can run
// them on that slot's stream. Torch-free: the engine sets it, TorchMaskModel reads it.
#pragma once

#include <optional>

namespace segmentor {

// Note [Streams follow gate slots]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The caching allocator keeps freed blocks per CUDA stream, so the memory a process holds grows
// with the number of streams that have run a task, not with the tasks in flight. With a stream
// per engine thread (MAX_CONCURRENT_IMAGES + 2 threads, picked in whatever order they wake) every
// thread's stream ended up caching a task's worth, and at an 8 GiB cap with MAX=8 the cache hit
// the cap and the allocator had to free and retry, stalling the device (bench/RESULTS.md,
// 2026-11-27). So each admission ticket carries a slot in [0, MAX_CONCURRENT_IMAGES), handed out
// last-in-first-out, and a task's model calls run on its slot's stream: at most as many streams
// hold a cache as tasks were ever admitted together, which is what the gate's byte arithmetic
// bounds, and the most recently used (warmest) cache is reused first.

// Sets the calling thread's slot for its lifetime and restores the previous one after.
class ScopedStreamSlot {
 public:
  explicit ScopedStreamSlot(std::optional<int> slot) : previous_(current()) { current() = slot; }
  ~ScopedStreamSlot() { current() = previous_; }
  ScopedStreamSlot(const ScopedStreamSlot&) = delete;
  ScopedStreamSlot& operator=(const ScopedStreamSlot&) = delete;

  // The calling thread's slot; none outside an admitted task (calibration, the CPU lane).
  static std::optional<int> get() { return current(); }

 private:
  static std::optional<int>& current() {
    thread_local std::optional<int> slot;
    return slot;
  }
  std::optional<int> previous_;
};

}  // namespace segmentor
