#include "postgres_environment.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace segmentor::testing {
namespace {

const std::string kScript =
    std::string(SEGMENTOR_SOURCE_DIR) + "/scripts/test-services/postgres.sh";

// Runs the script; false (after reporting why) when it fails. `out` receives its output.
bool run_script(const std::string& args, std::string* out) {
  const std::string command = "'" + kScript + "' " + args;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    ADD_FAILURE() << "cannot run " << command;
    return false;
  }
  std::string text;
  std::array<char, 512> buffer{};
  while (fgets(buffer.data(), static_cast<int>(buffer.size()), pipe) != nullptr) {
    text += buffer.data();
  }
  const int status = pclose(pipe);
  if (status != 0) {
    ADD_FAILURE() << command << " failed (status " << status << "): " << text;
    return false;
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (out != nullptr) *out = text;
  return true;
}

class PostgresEnvironment final : public ::testing::Environment {
 public:
  void SetUp() override {
    ASSERT_TRUE(TestPostgres::instance().start())
        << "could not start the test PostgreSQL (needs Debian's postgresql package)";
  }
  void TearDown() override { TestPostgres::instance().stop(); }
};

// Registered before main() runs; gtest owns it. Listing tests does not start the server.
[[maybe_unused]] ::testing::Environment* const kEnvironment =
    ::testing::AddGlobalTestEnvironment(new PostgresEnvironment);

}  // namespace

TestPostgres& TestPostgres::instance() {
  static TestPostgres server;
  return server;
}

bool TestPostgres::start() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/segmentor-pg-test.XXXXXX";
  if (mkdtemp(pattern.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed for " << pattern;
    return false;
  }
  dir_ = pattern;
  // The script logs to stderr and prints the DSN last.
  std::string output;
  if (!run_script("start '" + dir_ + "' 2>&1", &output)) return false;
  dsn_ = output.substr(output.find_last_of('\n') + 1);
  return !dsn_.empty();
}

void TestPostgres::stop() {
  if (!dir_.empty()) run_script("stop '" + dir_ + "' 2>&1", nullptr);
  dir_.clear();
}

bool TestPostgres::pause() { return run_script("pause '" + dir_ + "' 2>&1", nullptr); }
bool TestPostgres::resume() { return run_script("resume '" + dir_ + "' 2>&1", nullptr); }

std::string unique_name(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return prefix + "-" + std::to_string(++counter);
}

}  // namespace segmentor::testing
