// The fixture of the fleet tests (issue 11): several `segmentor serve` replicas, each with its own
// log, on the one broker and database of the serve end-to-end tests.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "messaging/wire_format.h"
#include "serve_fixture.h"

namespace segmentor::testing {

inline std::string t(std::string_view topic) { return std::string(topic); }

// A string header of a dead-lettered message ("" when absent).
inline std::string header_text(const messaging::InboundDelivery& d, std::string_view key) {
  const messaging::HeaderValue* value = messaging::find_header(d.headers, key);
  if (value == nullptr) return "";
  if (const auto* text = std::get_if<std::string>(value)) return *text;
  return "<not a string>";
}

class FleetTest : public ServeTest {
 protected:
  // Starts replica `i` (its own log), replacing whatever ran there.
  WorkerProcess& start_replica(std::size_t i) {
    if (replicas_.size() <= i) replicas_.resize(i + 1);
    replicas_[i] = std::make_unique<WorkerProcess>(
        worker_env(),
        dir_ / ("replica-" + std::to_string(i) + "-" + std::to_string(++starts_) + ".log"));
    EXPECT_TRUE(replicas_[i]->start());
    return *replicas_[i];
  }
  std::string logs() const {
    std::string all;
    for (std::size_t i = 0; i < replicas_.size(); ++i) {
      if (replicas_[i]) all += "--- replica " + std::to_string(i) + "\n" + replicas_[i]->log();
    }
    return all;
  }
  // Ready messages in the worker's input queues (unacked ones in a replica's hands not counted).
  static long queued(const std::string& topic) {
    auto conn = messaging::testing::connect(shared_broker()->url());
    if (!conn.ok()) return -1;
    return messaging::testing::message_count(**conn, "queue." + topic);
  }

  std::vector<std::unique_ptr<WorkerProcess>> replicas_;
  int starts_ = 0;
};

}  // namespace segmentor::testing
