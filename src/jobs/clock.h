// The tracker's source of time, injectable so tests move time by hand instead of sleeping.
#pragma once

#include <mutex>

#include "jobs/job_types.h"

namespace segmentor {

// Tells the time. Implementations must be thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual JobTime now() const = 0;
};

// The system's wall clock (progress outlives the process, so a monotonic clock would not do).
class SystemClock final : public Clock {
 public:
  JobTime now() const override { return JobClock::now(); }
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(JobTime start = JobTime{} + std::chrono::hours(24 * 365 * 50))
      : now_(start) {}

  JobTime now() const override {
    std::lock_guard lock(mutex_);
    return now_;
  }
  void set(JobTime time) {
    std::lock_guard lock(mutex_);
    now_ = time;
  }
  void advance(JobClock::duration by) {
    std::lock_guard lock(mutex_);
    now_ += by;
  }

 private:
  mutable std::mutex mutex_;
  JobTime now_;
};

}  // namespace segmentor
