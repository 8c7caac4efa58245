// DatabaseClock: the job tracker's Clock in `serve`, following PostgreSQL's clock, so that every
// replica sharing the database agrees on when a watermark fires or a publish claim expires
// (Note [Completion claims] in jobs/job_tracker.h) however far their own clocks drift.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>

#include "common/status.h"
#include "jobs/clock.h"
#include "storage/postgres.h"

namespace segmentor {

// now() is the local wall clock plus the database's offset from it, measured with
// `SELECT now()` (half the round trip counted) at most every `refresh` and kept when the
// database cannot be reached. Thread-safe. Must not be called from inside a PostgresDatabase
// transaction body (the refresh runs a transaction of its own). Does not own `db`.
class DatabaseClock final : public Clock {
 public:
  explicit DatabaseClock(PostgresDatabase* db,
                         std::chrono::seconds refresh = std::chrono::seconds(30));
  JobTime now() const override;
  // Measures the offset now; the error when the database did not answer.
  Status refresh() const;
  std::chrono::microseconds offset() const { return std::chrono::microseconds(offset_us_.load()); }

 private:
  PostgresDatabase* const db_;
  const std::chrono::seconds refresh_;
  mutable std::mutex refresh_mutex_;
  mutable std::chrono::steady_clock::time_point next_refresh_{};
  mutable std::atomic<std::int64_t> offset_us_{0};
};

}  // namespace segmentor
