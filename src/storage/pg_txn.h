// Internal to segmentor_storage: the libpqxx side of a transaction. Include only from this
// library's .cpp files; its public headers stay free of libpqxx.
#pragma once

#include <optional>
#include <pqxx/pqxx>
#include <string_view>
#include <utility>

#include "common/status.h"

namespace segmentor {

// A failure from libpqxx, classified per Note [Database retries] (storage/postgres.h).
struct PgFailure {
  Status status;
  bool retry = false;      // transient: run the transaction again
  bool reconnect = false;  // the connection is unusable: open a new one first
};

// Converts the exception in flight into a PgFailure. Call only from inside a catch block.
// `conn` (may be null) tells a dead connection from a live one when the exception does not.
PgFailure classify_current_exception(std::string_view what, const pqxx::connection_base* conn);

// One open transaction, lent to a PostgresDatabase::Body. Not thread-safe; lives for one try.
class PgTxn {
 public:
  explicit PgTxn(pqxx::work& work) : work_(work) {}
  PgTxn(const PgTxn&) = delete;
  PgTxn& operator=(const PgTxn&) = delete;

  // Runs `fn(work)`, which may throw libpqxx exceptions, and returns them as a Status. The failure
  // is remembered, so that PostgresDatabase::run retries a transient one even when the body
  // passes the Status on through code that does not know about databases (the job tracker).
  template <typename Fn>
  Status guard(std::string_view what, Fn&& fn) {
    try {
      std::forward<Fn>(fn)(work_);
      return Status::Ok();
    } catch (...) {
      failure_ = classify_current_exception(what, &work_.conn());
      return failure_->status;
    }
  }

  const std::optional<PgFailure>& failure() const { return failure_; }

 private:
  pqxx::work& work_;
  std::optional<PgFailure> failure_;
};

}  // namespace segmentor
