#include "storage/postgres.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "common/backoff.h"
#include "storage/pg_txn.h"

namespace segmentor {
namespace {

// libpq messages end with a newline (sometimes several lines); logs want one line.
std::string one_line(std::string_view text) {
  std::string out(text);
  std::replace(out.begin(), out.end(), '\n', ' ');
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

PgFailure connection_lost(std::string_view what, std::string_view detail) {
  return {unavailable(std::string(what) + ": database connection lost: " + one_line(detail)),
          /*retry=*/true, /*reconnect=*/true};
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

PgFailure classify_current_exception(std::string_view what, const pqxx::connection_base* conn) {
  const bool conn_dead = conn != nullptr && !conn->is_open();
  const std::string prefix(what);
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    return connection_lost(what, e.what());
  } catch (const pqxx::in_doubt_error& e) {
    // The commit may or may not have landed; retrying is safe (Note [Database retries]).
    return {unavailable(prefix + ": commit outcome unknown: " + one_line(e.what())), true, true};
  } catch (const pqxx::statement_completion_unknown& e) {
    return {unavailable(prefix + ": statement outcome unknown: " + one_line(e.what())), true, true};
  } catch (const pqxx::transaction_rollback& e) {
    // Serialization failure or deadlock: the server rolled back; the connection is fine.
    return {unavailable(prefix + ": transaction rolled back: " + one_line(e.what())), true, false};
  } catch (const pqxx::sql_error& e) {
    const std::string& state = e.sqlstate();
    // Class 08 = connection exception; 57P01..03 = server shutting down / starting up;
    // 53300 = too many connections.
    if (conn_dead || starts_with(state, "08") || state == "57P01" || state == "57P02" ||
        state == "57P03" || state == "53300") {
      return connection_lost(what, e.what());
    }
    if (state == "22001") {  // string_data_right_truncation: a value longer than its column
      return {invalid_argument(prefix + ": value too long: " + one_line(e.what())), false, false};
    }
    return {internal_error(prefix + ": database error " + state + ": " + one_line(e.what())), false,
            false};
  } catch (const pqxx::failure& e) {
    if (conn_dead) return connection_lost(what, e.what());
    return {internal_error(prefix + ": database failure: " + one_line(e.what())), false, false};
  } catch (const std::exception& e) {
    return {internal_error(prefix + ": " + one_line(e.what())), false, false};
  } catch (...) {
    return {internal_error(prefix + ": unknown exception"), false, false};
  }
}

std::string dsn_with_connect_timeout(const std::string& dsn, int seconds) {
  if (seconds <= 0 || dsn.find("connect_timeout") != std::string::npos) return dsn;
  const std::string setting = "connect_timeout=" + std::to_string(seconds);
  if (starts_with(dsn, "postgres://") || starts_with(dsn, "postgresql://")) {
    return dsn + (dsn.find('?') == std::string::npos ? "?" : "&") + setting;
  }
  return dsn.empty() ? setting : dsn + " " + setting;
}

struct PostgresDatabase::Impl {
  PostgresOptions options;
  std::string dsn;

  std::mutex mutex;
  std::unique_ptr<pqxx::connection> conn;                       // guarded by mutex
  std::vector<std::pair<std::string, std::string>> statements;  // guarded by mutex
  bool ever_connected = false;                                  // guarded by mutex

  // One try of one transaction; nullopt when it committed. Requires mutex.
  std::optional<PgFailure> try_once(std::string_view what, const Body& body,
                                    std::atomic<std::int64_t>& reconnects) {
    try {
      if (!conn) {
        conn = std::make_unique<pqxx::connection>(dsn);
        for (const auto& [name, sql] : statements) conn->prepare(name, sql);
        if (ever_connected) {
          ++reconnects;
          spdlog::info("database: reconnected");
        }
        ever_connected = true;
      }
      pqxx::work work(*conn);
      PgTxn txn(work);
      Status status = body(txn);
      if (!status.ok()) {
        // The destructor of `work` rolls back.
        if (txn.failure().has_value()) {
          return PgFailure{std::move(status), txn.failure()->retry, txn.failure()->reconnect};
        }
        return PgFailure{std::move(status), false, false};
      }
      work.commit();
      return std::nullopt;
    } catch (...) {
      return classify_current_exception(what, conn.get());
    }
  }
};

PostgresDatabase::PostgresDatabase(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PostgresDatabase::~PostgresDatabase() = default;

Result<std::unique_ptr<PostgresDatabase>> PostgresDatabase::create(const PostgresOptions& options) {
  if (options.max_attempts < 1) return invalid_argument("database: max_attempts must be >= 1");
  if (options.initial_backoff.count() < 0 || options.max_backoff < options.initial_backoff) {
    return invalid_argument("database: back-off must satisfy 0 <= initial <= max");
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->dsn = dsn_with_connect_timeout(options.dsn, options.connect_timeout_seconds);
  std::unique_ptr<PostgresDatabase> db(new PostgresDatabase(std::move(impl)));
  // An empty transaction: connects (with retries) and proves the server answers.
  SEGMENTOR_RETURN_IF_ERROR(db->run("connect", [](PgTxn&) { return Status::Ok(); }));
  return db;
}

void PostgresDatabase::prepare(const std::string& name, const std::string& sql) {
  std::lock_guard lock(impl_->mutex);
  for (const auto& [known_name, known_sql] : impl_->statements) {
    // Two stores on one database declare the same statements; once is enough.
    if (known_name == name && known_sql == sql) return;
  }
  impl_->statements.emplace_back(name, sql);
  if (impl_->conn) {
    try {
      impl_->conn->prepare(name, sql);
    } catch (...) {
      // Declaring is local bookkeeping in libpqxx; should it fail, the next connection retries.
      impl_->conn.reset();
    }
  }
}

// See Note [Database retries].
Status PostgresDatabase::run(std::string_view what, const Body& body) {
  Backoff backoff(impl_->options.initial_backoff, impl_->options.max_backoff);
  for (int attempt = 1;; ++attempt) {
    std::optional<PgFailure> failure;
    {
      std::lock_guard lock(impl_->mutex);
      failure = impl_->try_once(what, body, reconnects_);
      if (!failure.has_value()) return Status::Ok();
      if (failure->reconnect) impl_->conn.reset();
    }
    if (!failure->retry) return failure->status;
    if (attempt >= impl_->options.max_attempts) {
      spdlog::error("database: {} failed after {} attempts: {}", what, attempt,
                    failure->status.message());
      return failure->status.with_context("after " + std::to_string(attempt) + " attempts");
    }
    ++retries_;
    const std::chrono::milliseconds wait = backoff.next();
    spdlog::warn("database: {} failed (attempt {} of {}), retrying in {} ms: {}", what, attempt,
                 impl_->options.max_attempts, wait.count(), failure->status.message());
    std::this_thread::sleep_for(wait);  // without the mutex: others may try meanwhile
  }
}

}  // namespace segmentor
