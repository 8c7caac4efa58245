#include "storage/database_clock.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "storage/pg_txn.h"

namespace segmentor {

DatabaseClock::DatabaseClock(PostgresDatabase* db, std::chrono::seconds refresh)
    : db_(db), refresh_(refresh) {}

Status DatabaseClock::refresh() const {
  std::int64_t db_micros = 0;
  const auto sent = std::chrono::system_clock::now();
  SEGMENTOR_RETURN_IF_ERROR(db_->run("read the database clock", [&](PgTxn& txn) {
    return txn.guard("read the database clock", [&](pqxx::work& work) {
      db_micros = work.exec1("SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::bigint")[0]
                      .as<std::int64_t>();
    });
  }));
  const auto received = std::chrono::system_clock::now();
  const auto local_mid = sent + (received - sent) / 2;
  const std::int64_t local_micros =
      std::chrono::duration_cast<std::chrono::microseconds>(local_mid.time_since_epoch()).count();
  const std::int64_t offset = db_micros - local_micros;
  const std::int64_t before = offset_us_.exchange(offset);
  if (std::llabs(offset - before) > 1'000'000) {
    spdlog::info("database clock is {} ms from this host's", offset / 1000);
  }
  return Status::Ok();
}

JobTime DatabaseClock::now() const {
  {
    std::lock_guard lock(refresh_mutex_);
    const auto steady = std::chrono::steady_clock::now();
    if (steady >= next_refresh_) {
      next_refresh_ = steady + refresh_;
      if (Status st = refresh(); !st.ok()) {
        spdlog::warn("database clock: {}; keeping the last offset", st.to_string());
      }
    }
  }
  return std::chrono::time_point_cast<JobClock::duration>(
      JobClock::now() + std::chrono::microseconds(offset_us_.load()));
}

}  // namespace segmentor
