// Database helpers that need no server.
#include <gtest/gtest.h>

#include "common/text.h"
#include "storage/mask_path_store.h"
#include "storage/postgres.h"

namespace segmentor {
namespace {

TEST(DsnTest, ConnectTimeoutIsAddedInEitherForm) {
  EXPECT_EQ(dsn_with_connect_timeout("host=db port=5432", 5),
            "host=db port=5432 connect_timeout=5");
  EXPECT_EQ(dsn_with_connect_timeout("postgresql://u:p@db/x", 3),
            "postgresql://u:p@db/x?connect_timeout=3");
  EXPECT_EQ(dsn_with_connect_timeout("postgres://db/x?sslmode=disable", 3),
            "postgres://db/x?sslmode=disable&connect_timeout=3");
  EXPECT_EQ(dsn_with_connect_timeout("", 2), "connect_timeout=2");
}

TEST(DsnTest, ExistingTimeoutOrZeroLeavesTheDsnAlone) {
  EXPECT_EQ(dsn_with_connect_timeout("host=db connect_timeout=9", 5), "host=db connect_timeout=9");
  EXPECT_EQ(dsn_with_connect_timeout("host=db", 0), "host=db");
}

TEST(Utf8LengthTest, CountsCharactersNotBytes) {
  EXPECT_EQ(utf8_length(""), 0u);
  EXPECT_EQ(utf8_length("abc"), 3u);
  EXPECT_EQ(utf8_length("caf\xC3\xA9"), 4u);                   // é: 2 bytes
  EXPECT_EQ(utf8_length("\xE2\x82\xAC\xF0\x9F\x98\x80"), 2u);  // €, 😀: 3 and 4 bytes
}

TEST(PostgresDatabaseTest, RejectsBadRetryOptions) {
  PostgresOptions options;
  options.max_attempts = 0;
  EXPECT_EQ(PostgresDatabase::create(options).status().code(), ErrorCode::kInvalidArgument);
  options.max_attempts = 1;
  options.initial_backoff = std::chrono::milliseconds(100);
  options.max_backoff = std::chrono::milliseconds(10);
  EXPECT_EQ(PostgresDatabase::create(options).status().code(), ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace segmentor
