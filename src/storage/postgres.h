// PostgresDatabase: the worker's one connection to PostgreSQL, with reconnect and retry with
// back-off, so a database outage becomes kUnavailable (retry later) instead of lost work.
// libpqxx stays behind this header; its exceptions become Status here (storage/pg_txn.h).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"

namespace segmentor {

class PgTxn;  // one open transaction; defined in storage/pg_txn.h, for this library's own use

struct PostgresOptions {
  std::string dsn;  // libpq keyword or URI form (Config::effective_postgres_dsn())
  // Tries per operation (the first included) before it returns kUnavailable.
  int max_attempts = 5;
  // Back-off between tries: doubles from `initial_backoff` up to `max_backoff`.
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{5000};
  // libpq's connect_timeout, added to the DSN unless it names one already. 0 = libpq's default.
  int connect_timeout_seconds = 5;
};

// Note [Database retries]
// Every operation is one transaction run by `run`. A lost connection (server gone, restarted,
// network cut), a commit whose outcome is unknown, or a serialization failure / deadlock is
// transient: the connection is dropped, re-opened on the next try (statements re-prepared), and
// the whole transaction runs again, up to `max_attempts`, sleeping between tries. Running it again
// is only correct because every body is idempotent: the mask UPDATEs write the same value, and the
// job store records assets by id (a commit that did land is seen as a duplicate). Any other
// database error (bad SQL, constraint violation) is a bug or bad data and is not retried.

// Owns the connection. Thread-safe: one mutex serialises transactions on the single connection,
// and it is not held while backing off. create() fails with kUnavailable if the server cannot be
// reached within the retry budget.
class PostgresDatabase {
 public:
  // The body of a transaction. It returns an error to roll back; libpqxx exceptions must not
  // escape it uncaught except through PgTxn (see pg_txn.h), which records them for `run`.
  using Body = std::function<Status(PgTxn& txn)>;

  static Result<std::unique_ptr<PostgresDatabase>> create(const PostgresOptions& options);
  ~PostgresDatabase();

  PostgresDatabase(const PostgresDatabase&) = delete;
  PostgresDatabase& operator=(const PostgresDatabase&) = delete;

  // Declares a prepared statement on the current connection and every later one.
  void prepare(const std::string& name, const std::string& sql);

  // Runs `body` in one transaction and commits it, retrying transient failures per
  // Note [Database retries]. `what` names the operation in errors and logs.
  Status run(std::string_view what, const Body& body);

  // Connections re-opened after a loss, and transactions tried again, since create (metrics).
  std::int64_t reconnects() const { return reconnects_.load(); }
  std::int64_t retries() const { return retries_.load(); }

 private:
  struct Impl;
  explicit PostgresDatabase(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
  std::atomic<std::int64_t> reconnects_{0};
  std::atomic<std::int64_t> retries_{0};
};

// `dsn` with libpq's connect_timeout added (keyword or URI form), unless it already has one.
std::string dsn_with_connect_timeout(const std::string& dsn, int seconds);

}  // namespace segmentor
