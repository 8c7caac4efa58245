#include <gtest/gtest.h>

#include <map>
#include <string>

#include "config/config.h"

#ifdef SEGMENTOR_HAVE_LIBPQ
#include <libpq-fe.h>
#endif

namespace segmentor {
namespace {

TEST(EffectivePostgresDsn, BuiltFromTheDefaults) {
  EXPECT_EQ(Config{}.effective_postgres_dsn(),
            "postgresql://postgres:dev@postgres:5432/product_video_matching");
}

TEST(EffectivePostgresDsn, ExplicitDsnIsUsedVerbatim) {
  Config config;
  config.postgres_dsn = "host=db user=x password=y";
  config.postgres_password = "ignored";
  EXPECT_EQ(config.effective_postgres_dsn(), "host=db user=x password=y");
}

TEST(EffectivePostgresDsn, PercentEncodesSpecialCharacters) {
  Config config;
  config.postgres_user = "app user";
  config.postgres_password = "p@ss:w/o?rd#%&=+";
  config.postgres_host = "db.internal";
  config.postgres_port = 6543;
  config.postgres_db = "my db";
  EXPECT_EQ(config.effective_postgres_dsn(),
            "postgresql://app%20user:p%40ss%3Aw%2Fo%3Frd%23%25%26%3D%2B@db.internal:6543/my%20db");
}

TEST(EffectivePostgresDsn, EmptyPasswordIsLeftOut) {
  Config config;
  config.postgres_password = "";
  EXPECT_EQ(config.effective_postgres_dsn(),
            "postgresql://postgres@postgres:5432/product_video_matching");
}

TEST(EffectivePostgresDsn, HostForms) {
  Config config;
  config.postgres_host = "::1";
  EXPECT_EQ(config.effective_postgres_dsn(),
            "postgresql://postgres:dev@[::1]:5432/product_video_matching");
  config.postgres_host = "/run/postgresql";
  EXPECT_EQ(config.effective_postgres_dsn(),
            "postgresql://postgres:dev@%2Frun%2Fpostgresql:5432/product_video_matching");
}

#ifdef SEGMENTOR_HAVE_LIBPQ
// libpq's own parser must read back exactly the parts we put in.
std::map<std::string, std::string> libpq_parse(const std::string& dsn) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  std::map<std::string, std::string> out;
  if (options == nullptr) {
    ADD_FAILURE() << "libpq rejected " << dsn << ": " << (error != nullptr ? error : "?");
    PQfreemem(error);
    return out;
  }
  for (PQconninfoOption* option = options; option->keyword != nullptr; ++option) {
    if (option->val != nullptr) out[option->keyword] = option->val;
  }
  PQconninfoFree(options);
  return out;
}

TEST(EffectivePostgresDsn, LibpqDecodesWhatWeEncoded) {
  Config config;
  config.postgres_user = "us er@x";
  config.postgres_password = "p@ss:w/o?rd#%&=+ ü'\"\\";
  config.postgres_host = "/run/postgresql";
  config.postgres_port = 6543;
  config.postgres_db = "db/name?x";
  const auto parts = libpq_parse(config.effective_postgres_dsn());
  EXPECT_EQ(parts.at("user"), config.postgres_user);
  EXPECT_EQ(parts.at("password"), config.postgres_password);
  EXPECT_EQ(parts.at("host"), config.postgres_host);
  EXPECT_EQ(parts.at("port"), "6543");
  EXPECT_EQ(parts.at("dbname"), config.postgres_db);

  config.postgres_host = "::1";
  EXPECT_EQ(libpq_parse(config.effective_postgres_dsn()).at("host"), "::1");
}
#endif

}  // namespace
}  // namespace segmentor
