// OomRecovery: the out-of-memory recovery ladder around one task attempt.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "memory/admission_gate.h"
#include "memory/cache_policy.h"
#include "memory/device_memory.h"
#include "memory/oom_cause.h"

namespace segmentor {

// Note [Recovery ladder]
// ~~~~~~~~~~~~~~~~~~~~~~
// Like c10's allocator ladder, every rung is explicit, bounded and counted (RecoveryStats):
//
//   1. Run the GPU attempt. Success → tell the gate (on_success) and return.
//      A non-OOM error → return it at once: retrying a corrupt image or a bug as if it were
//      memory pressure would only hide it (counted as non_oom_errors).
//   2. ErrorCode::kOutOfMemory → oom_events++. Read the device and judge the OOM (Note
//      [Over-admission or a passing OOM], oom_cause.h): over_admission_ooms++ or
//      below_budget_ooms++.
//   2a. Below the budget, the task's first such OOM, and a retry left: retry at once →
//      immediate_retries++, retries++, go to 1. No release, no shrink, no back-off, no hooks
//      (the task keeps its ticket: it gave nothing back and waits for nothing).
//   3. Over-admission only: release the allocator's cache (+ synchronize) → cache_releases++.
//      Through the CachePolicy when there is one, so the release is timed and reported with the
//      others. A below-budget OOM left room free, so a release would gain nothing.
//   4. Over-admission only: shrink the gate (AdmissionGate::on_out_of_memory) so fewer tasks
//      share the card next. A below-budget OOM leaves the gate as it is.
//   5. If RETRY_ON_OOM and fewer than MAX_OOM_RETRIES retries were made: back off (0.5 s, 1 s,
//      2 s, then the last step again; the steps count back-offs, not retries, so an at-once
//      retry does not skip a step; after a below-budget OOM kPassingBackoffShare of the step,
//      Note [Over-admission or a passing OOM]) → retries++, and go to 1. The caller may give up
//      what it holds for the back-off and take it again after (LadderHooks): see Note [Ticket
//      across the ladder] in pipeline/engine.cpp for why the engine does.
//   6. Retries exhausted or disabled: run the CPU fallback if one was given → cpu_fallbacks++;
//      success returns; failure → cpu_fallback_failures++.
//   7. failed_tasks++ and return an error whose message tells what happened at every rung. The
//      code is kOutOfMemory, or the CPU fallback's own code when that ran and failed otherwise.
//
// At most 1 + MAX_OOM_RETRIES GPU attempts and one CPU attempt, whatever the device does: the
// ladder terminates against a device that always fails (at-once retries count as retries).

inline constexpr int kDefaultMaxOomRetries = 3;
// What part of a back-off step a below-budget OOM waits (Note [Over-admission or a passing OOM]).
inline constexpr double kPassingBackoffShare = 0.2;

struct RecoveryOptions {
  bool retry_on_oom = true;                     // RETRY_ON_OOM
  int max_oom_retries = kDefaultMaxOomRetries;  // MAX_OOM_RETRIES
  // The wait before retry i is backoff[min(i, size − 1)]; empty = no wait.
  std::vector<std::chrono::nanoseconds> backoff = {
      std::chrono::milliseconds(500), std::chrono::seconds(1), std::chrono::seconds(2)};
  // How to wait; empty = std::this_thread::sleep_for. Tests inject a recorder.
  std::function<void(std::chrono::nanoseconds)> sleep;
  // Without a gate the margin of Note [Over-admission or a passing OOM] is this threshold's
  // headroom alone; with one, the gate's own threshold and largest task decide.
  double memory_threshold = 0.85;
};

struct RecoveryStats {
  std::uint64_t oom_events = 0;
  std::uint64_t cache_releases = 0;
  std::uint64_t retries = 0;
  std::uint64_t cpu_fallbacks = 0;
  std::uint64_t cpu_fallback_failures = 0;
  std::uint64_t failed_tasks = 0;      // gave up after the whole ladder
  std::uint64_t non_oom_errors = 0;    // returned at once, not retried
  std::uint64_t recovered_on_gpu = 0;  // succeeded on a retry
  std::uint64_t recovered_on_cpu = 0;  // succeeded on the CPU fallback
  // Note [Over-admission or a passing OOM]: oom_events = over_admission + below_budget.
  std::uint64_t over_admission_ooms = 0;
  std::uint64_t below_budget_ooms = 0;
  std::uint64_t immediate_retries = 0;  // below-budget retries made at once (part of `retries`)
  std::chrono::nanoseconds backoff_time_total{0};
  std::chrono::nanoseconds cache_release_time_total{0};

  // Adds another ladder's counts (one ladder per GPU lane; reports show the sum).
  RecoveryStats& operator+=(const RecoveryStats& other);
};

// What the caller does around each back-off (both optional). `before_backoff` runs after the
// OOM has been handled and before the wait; `after_backoff` after the wait and before the next
// GPU attempt. An error from `after_backoff` (e.g. re-admission cancelled) ends the ladder with
// that error: no further GPU attempt and no CPU fallback, since the task was told to stop.
struct LadderHooks {
  std::function<void()> before_backoff;
  std::function<Status()> after_backoff;
};

// What happened to one task on the ladder (for its log line and its dead-letter reason).
struct RecoveryReport {
  int gpu_attempts = 0;
  int oom_events = 0;
  int over_admission_ooms = 0;
  bool used_cpu_fallback = false;
  bool succeeded = false;
  std::string trail;  // "gpu attempt 1: out of memory (...); released cache in 3 ms; ..."
};

// Runs task attempts through the ladder of Note [Recovery ladder].
// Thread-safe: lanes share one instance; stats_mutex_ guards the counters, attempts run unlocked.
// Does not own the device, gate or cache policy; they must outlive it.
class OomRecovery {
 public:
  using Attempt = std::function<Status()>;

  // `gate` and `cache` may be null (no gate to shrink; release through the device directly).
  static Result<std::unique_ptr<OomRecovery>> create(RecoveryOptions options, DeviceMemory* device,
                                                     AdmissionGate* gate = nullptr,
                                                     CachePolicy* cache = nullptr);
  OomRecovery(const OomRecovery&) = delete;
  OomRecovery& operator=(const OomRecovery&) = delete;

  // Runs `gpu` through the ladder, then `cpu_fallback` (may be empty). Fills `report` if given.
  Status run(const Attempt& gpu, const Attempt& cpu_fallback = {}, RecoveryReport* report = nullptr,
             const LadderHooks& hooks = {});

  // The same for attempts that produce a value.
  template <typename T>
  Result<T> run_for(const std::function<Result<T>()>& gpu,
                    const std::function<Result<T>()>& cpu_fallback = {},
                    RecoveryReport* report = nullptr, const LadderHooks& hooks = {}) {
    std::optional<T> value;
    auto keep = [&value](Result<T> result) -> Status {
      if (!result.ok()) return result.status();
      value.emplace(std::move(result).value());
      return Status::Ok();
    };
    Attempt cpu;
    if (cpu_fallback) cpu = [&] { return keep(cpu_fallback()); };
    Status status = run([&] { return keep(gpu()); }, cpu, report, hooks);
    if (!status.ok()) return status;
    return std::move(*value);
  }

  RecoveryStats stats() const;

 private:
  OomRecovery(RecoveryOptions options, DeviceMemory* device, AdmissionGate* gate,
              CachePolicy* cache);
  std::chrono::nanoseconds backoff_for(int retry, OomCause cause) const;
  OomJudgement judge(const MemorySnapshot& at_oom) const;

  const RecoveryOptions options_;
  DeviceMemory* const device_;
  AdmissionGate* const gate_;
  CachePolicy* const cache_;

  mutable std::mutex stats_mutex_;
  RecoveryStats stats_;
};

}  // namespace segmentor
