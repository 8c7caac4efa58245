// Test support: a private RabbitMQ node started through scripts/test-services/rabbitmq.sh, and
// small helpers that look at queues from the outside with their own connection.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "messaging/amqp_connection.h"

namespace segmentor::messaging::testing {

class PrivateBroker {
 public:
  // nullptr with `skip_reason` set when rabbitmq-server is not installed; a failure to start an
  // installed one is an error.
  static Result<std::unique_ptr<PrivateBroker>> create(std::string* skip_reason);
  ~PrivateBroker();

  const std::string& url() const { return url_; }
  Status restart();
  // kill -9 (no connection.close to clients), then start again on the same port and data.
  Status crash_and_start();
  // Runs rabbitmqctl with `args` against this node; returns its stdout.
  Result<std::string> ctl(const std::string& args) const;

 private:
  PrivateBroker(std::string dir, std::string url) : dir_(std::move(dir)), url_(std::move(url)) {}
  std::string dir_;
  std::string url_;
};

// A fresh connection for inspecting the broker.
Result<std::unique_ptr<AmqpConnection>> connect(const std::string& url);
// Up to `count` messages taken from `queue` (acked), waiting at most `timeout` in total.
std::vector<InboundDelivery> take(AmqpConnection& conn, const std::string& queue, int count,
                                  std::chrono::milliseconds timeout);
// The queue's ready-message count (passive declare); -1 when it does not exist.
long message_count(AmqpConnection& conn, const std::string& queue);

}  // namespace segmentor::messaging::testing
