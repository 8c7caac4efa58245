// Helpers for the database tests: a connected PostgresDatabase with fast retries, and direct SQL
// (libpqxx, independent of the code under test) to seed and check rows.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>

#include "postgres_environment.h"
#include "storage/postgres.h"

namespace segmentor::testing {

inline PostgresOptions fast_options() {
  PostgresOptions options;
  options.dsn = TestPostgres::instance().dsn();
  options.max_attempts = 3;
  options.initial_backoff = std::chrono::milliseconds(10);
  options.max_backoff = std::chrono::milliseconds(40);
  return options;
}

inline std::unique_ptr<PostgresDatabase> connect(const PostgresOptions& options = fast_options()) {
  auto db = PostgresDatabase::create(options);
  EXPECT_TRUE(db.ok()) << db.status().to_string();
  return db.ok() ? std::move(db).value() : nullptr;
}

// Runs one SQL statement on a fresh connection; the first column of the first row, if any.
inline std::optional<std::string> sql(const std::string& statement) {
  pqxx::connection conn(TestPostgres::instance().dsn());
  pqxx::work work(conn);
  const pqxx::result rows = work.exec(statement);
  work.commit();
  if (rows.empty() || rows[0].empty() || rows[0][0].is_null()) return std::nullopt;
  return rows[0][0].as<std::string>();
}

inline std::string sql_literal(const std::string& text) {
  pqxx::connection conn(TestPostgres::instance().dsn());
  return conn.quote(text);
}

}  // namespace segmentor::testing
