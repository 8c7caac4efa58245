// Test support for the `segmentor serve` end-to-end tests: one private RabbitMQ and one private
// PostgreSQL per test process (gtest global environments), the real binary run as a child
// process, an upstream-like publisher, and a collector of the events the worker emits.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "messaging/amqp_connection.h"
#include "messaging/broker_client.h"
#include "private_broker.h"

namespace segmentor::testing {

// The broker shared by every test of the process; null when rabbitmq-server is missing.
messaging::testing::PrivateBroker* shared_broker();

// `segmentor serve` as a child process with a clean environment (PATH plus `env`).
class WorkerProcess {
 public:
  WorkerProcess(std::map<std::string, std::string> env, std::filesystem::path log_file);
  ~WorkerProcess();  // SIGKILL if still running
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // Starts it and waits until it consumes (its log says so); false with the log on failure.
  bool start(std::chrono::seconds timeout = std::chrono::seconds(60));
  // SIGTERM, then waits for the exit; the exit status (-1 if it did not exit in `timeout`).
  int terminate(std::chrono::seconds timeout = std::chrono::seconds(60));
  // SIGKILL (a crash, an OOM kill): nothing is settled, nothing is flushed.
  void kill_now();
  bool running() const { return pid_ > 0; }
  // Started and not exited since (reaps it if it has exited).
  bool alive();
  std::string log() const;

 private:
  std::map<std::string, std::string> env_;
  std::filesystem::path log_file_;
  pid_t pid_ = -1;
};

// One emitted event as the downstream services see it.
struct Emitted {
  std::string topic;
  nlohmann::json body;
  std::string correlation_id;
};

// Consumes every topic of CONTRACT §3 through its own durable queues ("test.collect.<topic>")
// and keeps what arrived; tests pick their own job ids out. Not thread-safe.
class EventCollector {
 public:
  static Result<std::unique_ptr<EventCollector>> create(const std::string& url);
  // Polls until `done(events so far)` holds or `timeout` passes; returns whether it held.
  bool wait_until(const std::function<bool(const std::vector<Emitted>&)>& done,
                  std::chrono::milliseconds timeout);
  // Events of `topic` for `job_id`, in arrival order.
  std::vector<Emitted> of(const std::string& topic, const std::string& job_id) const;
  const std::vector<Emitted>& all() const { return events_; }

 private:
  explicit EventCollector(std::unique_ptr<messaging::AmqpConnection> conn)
      : conn_(std::move(conn)) {}
  void drain(std::chrono::milliseconds wait);
  std::unique_ptr<messaging::AmqpConnection> conn_;
  std::vector<Emitted> events_;
};

// Messages taken from `queue` (a DLQ) whose raw body contains `marker` (e.g. a unique job id),
// waiting up to `timeout` for `count` of them. Others taken on the way are dropped.
std::vector<messaging::InboundDelivery> take_matching(const std::string& queue,
                                                      const std::string& marker, int count,
                                                      std::chrono::milliseconds timeout);

// Publishes like the upstream services (publish-only BrokerClient).
class UpstreamPublisher {
 public:
  static Result<std::unique_ptr<UpstreamPublisher>> create(const std::string& url);
  Status publish(std::string_view topic, nlohmann::json payload,
                 std::string_view correlation_id = "");
  Status publish_raw(std::string_view topic, std::string body);

 private:
  explicit UpstreamPublisher(std::unique_ptr<messaging::BrokerClient> client)
      : client_(std::move(client)) {}
  std::unique_ptr<messaging::BrokerClient> client_;
};

}  // namespace segmentor::testing
