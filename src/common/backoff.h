// The one back-off schedule for waiting on a dependency (the database today): start at `initial`,
// double after each wait, never above `max`. The database's own retries of one transaction
// (storage/postgres.cpp, Note [Database retries]) and the worker's wait for a database outage to
// end (service/worker.h) step through it. Value type; not thread-safe (one per loop).
#pragma once

#include <algorithm>
#include <chrono>

namespace segmentor {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : next_(initial), max_(std::max(initial, max)) {}

  // The wait to take now; the following one is twice as long, up to `max`.
  std::chrono::milliseconds next() {
    const std::chrono::milliseconds wait = next_;
    next_ = std::min(next_ * 2, max_);
    return wait;
  }

 private:
  std::chrono::milliseconds next_;
  std::chrono::milliseconds max_;
};

}  // namespace segmentor
