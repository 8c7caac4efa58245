// AdmissionGate: admits GPU tasks (product images and video keyframes alike) by predicted bytes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/status.h"
#include "memory/device_memory.h"

namespace segmentor {

// Note [Gate arithmetic]
// ~~~~~~~~~~~~~~~~~~~~~~
// Every admission decision is made from these quantities, all in bytes:
//
//   others     = total − free − our reserved, ≥ 0    (other processes and our CUDA context)
//   budget     = min(total − others, process cap)     read live from DeviceMemory, at most once
//                                                     per budget_refresh_interval
//   threshold  = budget × GPU_MEMORY_THRESHOLD        headroom for allocator rounding, cuDNN
//                                                     workspaces and prediction error
//   resident   = Σ registered model weights
//   task_room  = threshold − resident
//   aimd_cap   = none, or a cap on in-flight task bytes (see AIMD below)
//   limit      = resident + min(task_room, aimd_cap)
//
// A task predicted to need b bytes is admitted when
//
//   in_flight < cap  and  (in_flight < MIN'  or  resident + in_flight_bytes + b ≤ limit)
//
// where cap is MAX, or lower where the ConcurrencyTuner found fewer tasks at once faster (Note
// [Tuning concurrency by throughput], concurrency_tuner.h); cap ≥ MIN' always.
//
// with MIN' = max(MIN, 1): an empty gate always admits, so a task predicted bigger than the whole
// budget runs alone and meets the recovery ladder instead of waiting forever.
//
// Why min(total − others, cap) and not min(total, cap) − others: with a cap (several workers
// sharing one card), the other workers' memory lies outside our share; subtracting it from our cap
// as well would make capped workers throttle each other for nothing. Without a cap both agree.
// Reading "others" live is what makes a neighbour growing on the card throttle us instead of
// OOMing us; the read is rate-limited because the gate decides on every admission.
//
// Fairness is strict FIFO: while anyone is queued, try_admit() refuses and admit() queues behind,
// and only the head of the queue may be admitted. A big task at the head is therefore never
// overtaken by a stream of small ones; the cost is some idle room while the head waits for enough
// bytes to free up, which is the price of no starvation. readmit() is for a task that was admitted
// before, gave its ticket back to back off after an OOM, and returns: it queues ahead of every task
// that has not been admitted yet, since it arrived before them, and behind the tasks that came
// back from a back-off before it (FIFO among the returning ones, in the order they return).
//
// AIMD (the limit adapts to what predictions miss):
//   on_out_of_memory():  aimd_cap = max(floor, min(aimd_cap or task_room, in_flight_bytes) ×
//   kBackoffFactor)
//     floor = MIN' × the largest task admitted so far (what MIN tasks need). Taking in_flight_bytes
//     into account matters: the OOM proves that what was in flight did not fit, whatever the limit
//     said. One decrease per cohort: an OOM reported when no task was admitted since the previous
//     decrease comes from the same tasks and does not shrink again (TCP's one decrease per window).
//   on_success(): after kSuccessesPerIncrease consecutive successes, aimd_cap += step (default
//     kIncreaseStepFraction × threshold); once it reaches task_room the cap is dropped, so the
//     limit follows the live budget again.
//
// Count only (the rollback switch): with count_only, set from GPU_MEMORY_THRESHOLD = 1.0, a task
// is admitted when in_flight < cap, whatever its bytes; budget, limit and AIMD are still computed
// and reported, they just decide nothing. This is the design document's "disable adaptive
// gating": MIN/MAX_CONCURRENT_IMAGES become a plain semaphore, as in the Python service.

inline constexpr double kBackoffFactor = 0.7;
inline constexpr int kSuccessesPerIncrease = 8;
inline constexpr double kIncreaseStepFraction = 0.05;
inline constexpr std::chrono::milliseconds kBudgetRefreshInterval{50};
// The longest a waiter sleeps without a notification before it re-reads the budget (the device's
// free memory can grow without anything in this process telling the gate).
inline constexpr std::chrono::milliseconds kWaitPollInterval{50};

struct AdmissionGateOptions {
  double memory_threshold = 0.85;  // GPU_MEMORY_THRESHOLD, in (0, 1]
  int min_concurrent = 1;          // MIN_CONCURRENT_IMAGES
  int max_concurrent = 4;          // MAX_CONCURRENT_IMAGES
  bool count_only = false;         // admit by count alone (Note [Gate arithmetic], count only)
  std::chrono::nanoseconds budget_refresh_interval = kBudgetRefreshInterval;
  double backoff_factor = kBackoffFactor;
  int successes_per_increase = kSuccessesPerIncrease;
  std::int64_t increase_step_bytes = 0;  // 0 = kIncreaseStepFraction of the threshold budget
  // The clock for budget-read rate limiting and wait statistics; empty = steady_clock::now.
  // (Blocking waits and admit_until deadlines always use the real steady clock.)
  std::function<std::chrono::steady_clock::time_point()> now;
};

struct GateStats {
  int in_flight = 0;
  int peak_in_flight = 0;
  int waiting = 0;
  std::int64_t in_flight_bytes = 0;
  std::int64_t resident_bytes = 0;
  std::int64_t limit_bytes = 0;                // resident + min(task_room, aimd_cap)
  std::int64_t budget_bytes = 0;               // from the latest device reading
  std::int64_t threshold_budget_bytes = 0;     // budget × threshold
  std::optional<std::int64_t> aimd_cap_bytes;  // none = the limit follows the budget
  int concurrency_cap = 0;                     // set_concurrency_cap(), MAX until set
  bool count_only = false;                     // AdmissionGateOptions::count_only
  // The AIMD cap sits at its floor (MIN' × the largest task admitted): OOMs pushed the limit as
  // low as it goes. Long stretches of this mean the predictions are far off (a runbook symptom).
  bool at_floor = false;
  std::int64_t largest_task_bytes = 0;  // the largest prediction admitted so far
  std::uint64_t admitted_total = 0;
  std::uint64_t readmitted_total = 0;    // readmit() calls (tasks back from an OOM back-off)
  std::uint64_t waits_total = 0;         // admissions that had to queue first
  std::uint64_t rejected_total = 0;      // try_admit() refusals
  std::uint64_t cancelled_total = 0;     // admit() stopped by its stop_token
  std::uint64_t timed_out_total = 0;     // admit_until() past its deadline
  std::uint64_t budget_reads_total = 0;  // DeviceMemory::snapshot() calls made by the gate
  std::uint64_t oom_signals_total = 0;   // on_out_of_memory() calls
  std::uint64_t shrinks_total = 0;       // ... of which shrank the limit
  std::uint64_t increases_total = 0;     // additive increases
  std::chrono::nanoseconds wait_time_total{0};
  std::chrono::nanoseconds wait_time_max{0};
};

// Admits tasks while their predicted bytes fit the live memory budget; see Note [Gate arithmetic].
// Thread-safe: one mutex (state_mutex_) guards the gate's state; device reads happen outside it.
// Does not own the DeviceMemory, which must outlive the gate; the gate must outlive its tickets.
class AdmissionGate {
 public:
  // Proof of admission: releases its bytes and its slot when destroyed (also while an exception
  // unwinds), or earlier with release(). Movable, not copyable.
  class [[nodiscard]] Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept;
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket();

    void release();
    bool valid() const { return gate_ != nullptr; }
    std::int64_t bytes() const { return bytes_; }
    // In [0, MAX_CONCURRENT_IMAGES): no two valid tickets share one. Slots are handed out
    // last-in-first-out, so the most recently released comes back first (the engine runs a
    // slot's GPU work on one thread: Note [GPU work runs on slot threads], pipeline/).
    int slot() const { return slot_; }
    // Tasks in flight on the gate right after this one was admitted, itself included (the
    // concurrency it ran at, for the ConcurrencyTuner).
    int level() const { return level_; }

   private:
    friend class AdmissionGate;
    Ticket(AdmissionGate* gate, std::int64_t bytes, int slot, int level)
        : gate_(gate), bytes_(bytes), slot_(slot), level_(level) {}
    AdmissionGate* gate_ = nullptr;
    std::int64_t bytes_ = 0;
    int slot_ = 0;
    int level_ = 0;
  };

  // Validates the options and reads the device once, so the first decision has a budget.
  static Result<std::unique_ptr<AdmissionGate>> create(AdmissionGateOptions options,
                                                       DeviceMemory* device);
  AdmissionGate(const AdmissionGate&) = delete;
  AdmissionGate& operator=(const AdmissionGate&) = delete;
  ~AdmissionGate() = default;

  // Admits now or returns nothing; never blocks (a due budget read is the only device call).
  // predicted_bytes must be >= 0 (negative values count as 0).
  std::optional<Ticket> try_admit(std::int64_t predicted_bytes);

  // Waits, FIFO, until admitted. kUnavailable when `stop` is requested first.
  Result<Ticket> admit(std::int64_t predicted_bytes, std::stop_token stop = {});
  // As admit(), and kUnavailable once `deadline` (steady clock) passes.
  Result<Ticket> admit_until(std::int64_t predicted_bytes,
                             std::chrono::steady_clock::time_point deadline,
                             std::stop_token stop = {});
  // As admit(), but queued ahead of every waiter (see Note [Gate arithmetic], fairness).
  Result<Ticket> readmit(std::int64_t predicted_bytes, std::stop_token stop = {});

  // Model weights that stay on the device while loaded. Registering a name again replaces it.
  void register_resident(const std::string& name, std::int64_t bytes);
  void unregister_resident(const std::string& name);

  // At most `cap` tasks in flight, clamped to [MIN', MAX] (the ConcurrencyTuner's, Note [Tuning
  // concurrency by throughput]); MAX until set. Bytes still decide within it.
  void set_concurrency_cap(int cap);

  // AIMD signals from the recovery ladder and the lanes; see Note [Gate arithmetic]. The ladder
  // signals only OOMs it judged over-admission (Note [Over-admission or a passing OOM]).
  void on_out_of_memory();
  void on_success();

  // Reads the device now (not waiting for the refresh interval) and wakes waiters.
  void refresh_budget();

  GateStats stats() const;
  double memory_threshold() const { return options_.memory_threshold; }

 private:
  AdmissionGate(AdmissionGateOptions options, DeviceMemory* device);

  std::chrono::steady_clock::time_point now() const;
  void refresh_budget_if_due();
  void apply_snapshot(const MemorySnapshot& snapshot);
  enum class QueuePlace { kBack, kFront };
  Result<Ticket> admit_impl(std::int64_t predicted_bytes,
                            std::optional<std::chrono::steady_clock::time_point> deadline,
                            std::stop_token stop, QueuePlace place = QueuePlace::kBack);
  void release_ticket(std::int64_t bytes, int slot);

  // All *_locked functions require state_mutex_.
  std::int64_t task_room_locked() const;
  std::int64_t limit_locked() const;
  bool fits_locked(std::int64_t bytes) const;
  Ticket admit_locked(std::int64_t bytes);
  void changed_locked();  // bumps version_ and wakes waiters

  const AdmissionGateOptions options_;
  const int effective_min_;  // MIN' = max(MIN, 1)
  DeviceMemory* const device_;
  int concurrency_cap_;  // state_mutex_; in [MIN', MAX]

  mutable std::mutex state_mutex_;
  std::condition_variable_any state_changed_;  // _any: waits can be interrupted by a stop_token
  std::uint64_t version_ = 0;                  // bumped on every change a waiter may care about

  // Device reading (state_mutex_).
  std::optional<std::chrono::steady_clock::time_point> last_read_;
  bool read_in_progress_ = false;
  std::int64_t budget_ = 0;
  std::int64_t threshold_budget_ = 0;

  // Admission state (state_mutex_).
  std::map<std::string, std::int64_t> resident_by_name_;
  std::int64_t resident_ = 0;
  int in_flight_ = 0;
  std::int64_t in_flight_bytes_ = 0;
  std::deque<std::uint64_t> queue_;     // waiter ids, FIFO (readmitted ones first, FIFO among them)
  std::ptrdiff_t readmit_waiters_ = 0;  // the readmitted block at the head of queue_
  std::vector<int> free_slots_;         // a stack: the back is handed out next
  std::uint64_t next_waiter_id_ = 1;
  std::int64_t largest_task_bytes_ = 0;

  // AIMD (state_mutex_).
  std::optional<std::int64_t> aimd_cap_;
  int consecutive_successes_ = 0;
  std::uint64_t admitted_at_last_shrink_ = 0;
  bool shrunk_once_ = false;

  GateStats counters_;  // the *_total, peak and wait fields (state_mutex_)
};

}  // namespace segmentor
