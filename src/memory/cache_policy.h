// CachePolicy: decides when releasing the caching allocator's cache pays, does it, and times it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>

#include "common/status.h"
#include "memory/device_memory.h"

namespace segmentor {

// Note [When to release the cache]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Releasing (empty cache + synchronize) is not free: it waits for queued GPU work, and the blocks
// it returns must be cudaMalloc'ed again by the next task. With fixed model input shapes the cache
// is mostly reused as is (DESIGN § Memory management, 3), so we release only when it pays:
//  * after an out-of-memory error: the cached blocks may be exactly what the retry needs;
//  * under pressure: less than kPressureFraction of the budget is left unreserved and some of
//    what we reserve is cached, unused. Cache far from the budget is not pressure: each gate
//    slot's cache is reused by its next task (Note [GPU work runs on slot threads]), and
//    releasing it would only make that task cudaMalloc again. Near the budget it is what stands
//    between the next allocation and the allocator's own free-and-retry in the middle of a task,
//    or a neighbour's out-of-memory error when another process grows (the budget is read live);
//  * when idle for idle_after with no task running: give memory back to the card's other users;
//    once per idle period, not on every tick;
//  * every N finished tasks when GPU_CLEANUP_EVERY_N > 0, the old service's behaviour, kept as an
//    option to measure against.
// Each release is counted by reason and timed, so its cost is visible in the metrics.

inline constexpr double kPressureFraction = 0.10;
inline constexpr std::chrono::seconds kIdleReleaseAfter{30};

enum class ReleaseReason { kAfterOom = 0, kPressure, kIdle, kEveryN, kManual };
inline constexpr std::size_t kReleaseReasonCount = 5;
std::string_view to_string(ReleaseReason reason);

struct CachePolicyOptions {
  int cleanup_every_n = 0;  // GPU_CLEANUP_EVERY_N: 0 = off
  double pressure_fraction = kPressureFraction;  // of the budget; <= 0 turns the check off
  std::chrono::nanoseconds idle_after = kIdleReleaseAfter;  // <= 0 turns idle release off
  // Clock for idle detection; empty = steady_clock::now.
  std::function<std::chrono::steady_clock::time_point()> now;
};

struct CacheStats {
  std::uint64_t releases_total = 0;
  std::array<std::uint64_t, kReleaseReasonCount> releases_by_reason{};  // index: ReleaseReason
  std::chrono::nanoseconds release_time_total{0};
  std::chrono::nanoseconds last_release_time{0};
  std::optional<ReleaseReason> last_reason;
  std::uint64_t tasks_finished = 0;
};

// Thread-safe: policy_mutex_ guards the counters; the release itself runs outside it, on the
// calling thread. Does not own the DeviceMemory, which must outlive it.
class CachePolicy {
 public:
  static Result<std::unique_ptr<CachePolicy>> create(CachePolicyOptions options,
                                                     DeviceMemory* device);
  CachePolicy(const CachePolicy&) = delete;
  CachePolicy& operator=(const CachePolicy&) = delete;

  // A task starts or finishes on the device (finishing counts for every-N and ends idleness).
  void on_task_started();
  // Releases when the every-N cadence says so; returns the reason when it released.
  std::optional<ReleaseReason> on_task_finished();
  // Always releases (the recovery ladder's first rung).
  std::chrono::nanoseconds on_out_of_memory();
  // For a periodic monitor: checks idleness and pressure (reads the device for pressure).
  std::optional<ReleaseReason> on_tick();
  // An explicit release (shutdown, model unload).
  std::chrono::nanoseconds release_now();

  CacheStats stats() const;

 private:
  CachePolicy(CachePolicyOptions options, DeviceMemory* device);
  std::chrono::steady_clock::time_point now() const;
  std::chrono::nanoseconds release(ReleaseReason reason);

  const CachePolicyOptions options_;
  DeviceMemory* const device_;

  mutable std::mutex policy_mutex_;
  int running_ = 0;
  std::chrono::steady_clock::time_point last_activity_;
  bool released_since_activity_ = false;
  CacheStats stats_;
};

}  // namespace segmentor
