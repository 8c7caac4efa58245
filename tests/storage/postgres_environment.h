// A private PostgreSQL server for the database tests, started by scripts/test-services/postgres.sh
// once per test process (a gtest global environment) and deleted at the end.
#pragma once

#include <string>

namespace segmentor::testing {

// The running test server. Valid between the environment's SetUp and TearDown.
class TestPostgres {
 public:
  static TestPostgres& instance();

  const std::string& dsn() const { return dsn_; }
  // Stops the server, keeping data and port (an outage); resume() starts it again.
  bool pause();
  bool resume();

  bool start();
  void stop();

 private:
  std::string dir_;
  std::string dsn_;
};

// A name unique within this test process's database, for ids and job ids.
std::string unique_name(const std::string& prefix);

}  // namespace segmentor::testing
