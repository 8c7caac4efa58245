// BrokerClient: the worker's whole conversation with RabbitMQ (CONTRACT §1). Declares the
// topology, consumes with manual ack, publishes with publisher confirms, retries transient
// failures through the worker's own queue and dead-letters the rest (each republish committed
// together with the original's ack: Note [Republish and ack commit together]), and reconnects
// after the broker goes away.
//
// Thread-safety: every public method may be called from any thread. One internal I/O thread owns
// the rabbitmq-c connection (which is not thread-safe); the methods hand it commands and wait
// for their result. See Note [One I/O thread] in broker_client.cpp.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "messaging/amqp_connection.h"
#include "messaging/wire_format.h"

namespace segmentor::messaging {

struct BrokerOptions {
  std::string url = "amqp://guest:guest@localhost:5672/";  // BUS_BROKER
  int max_concurrent_batches = 2;  // MAX_CONCURRENT_BATCHES: prefetch of per-asset queues
  ConnectOptions connect;
  // A publish not confirmed within this time is an error (and is not acked upstream). Retries,
  // dead-letters and acks commit a transaction instead, bounded by connect.rpc_timeout.
  std::chrono::milliseconds confirm_timeout{10000};
  // Reconnect back-off: initial, doubled after each failure, capped.
  std::chrono::milliseconds initial_backoff{250};
  std::chrono::milliseconds max_backoff{30000};
  // How long start() keeps trying to reach the broker before it gives up.
  std::chrono::milliseconds start_timeout{60000};
  RetryPolicy retry;
  // Tests only; empty in production. Runs on the I/O thread after a retry's or a dead-letter's
  // republish and before the original's ack, with the connection's socket, so that a test can
  // break the connection at the moment Note [Republish and ack commit together] is about.
  std::function<void(int socket_fd)> between_republish_and_ack;
};

// One message handed to the application.
struct Delivery {
  std::string topic;           // the subscription's routing key, also for retried copies
  std::string queue;           // "queue.<topic>"
  std::string body;            // raw bytes: parse with events.h, dead-letter when malformed
  std::string correlation_id;  // the AMQP property; may be empty (see resolve_correlation_id)
  Headers headers;
  std::int64_t retry_count = 0;  // x-retry-count, 0 when absent
  bool redelivered = false;      // the broker delivered it before (crash or reconnect)
  // Where it came from. Valid only on the connection that delivered it: after a reconnect the
  // broker redelivers the message under a new tag, and the old one is never acked.
  std::uint64_t connection_epoch = 0;
  std::uint16_t channel = 0;
  std::uint64_t delivery_tag = 0;
};

enum class RetryDecision {
  kScheduled,     // republished to the worker's own queue after the delay, acked with it
  kDeadLettered,  // retries exhausted: now in queue.<topic>.dlq, acked
};

struct BrokerStats {
  std::uint64_t connects = 0;         // successful connections, the first included
  std::uint64_t published = 0;        // confirmed or committed publishes of every kind
  std::uint64_t acked = 0;
  std::uint64_t retried = 0;          // retries republished and acked
  std::uint64_t dead_lettered = 0;
  std::uint64_t stale_deliveries = 0; // ack/retry/dead-letter refused: delivery of an old connection
};

class BrokerClient {
 public:
  // Validates the options and the URL; does no I/O.
  static Result<std::unique_ptr<BrokerClient>> create(BrokerOptions options);
  ~BrokerClient();  // stop()
  BrokerClient(const BrokerClient&) = delete;
  BrokerClient& operator=(const BrokerClient&) = delete;

  // Connects (retrying with back-off up to start_timeout), declares the exchange and, per topic,
  // queue.<topic> bound to it and queue.<topic>.dlq, then starts one consumer per topic on its
  // own channel with its prefetch. `topics` may be empty for a publish-only client. A topology
  // the broker refuses (e.g. PRECONDITION_FAILED: a queue declared with other arguments) fails
  // start() at once. Call once.
  Status start(const std::vector<std::string>& topics);

  // The next delivery, waiting up to `timeout`; nullopt on timeout. kUnavailable once stopped.
  Result<std::optional<Delivery>> next(std::chrono::milliseconds timeout);

  // Every settle operation below returns only when done (its transaction committed). When one
  // fails, the message is not lost: the broker still holds it and delivers it again (now, or
  // after the reconnect). A settlement that fails half-way drops the connection, so that the
  // broker discards its uncommitted part. kUnavailable for a delivery of an earlier connection
  // (stale tag; never sent to the broker) or a lost connection; kInvalidArgument for a delivery
  // already settled.
  Status ack(const Delivery& delivery);
  // A transient failure: republish to the delivery's own queue with x-retry-count + 1 after
  // the delay of Note [Retry schedule], acking the original in the same transaction; or
  // dead-letter when the retries are exhausted. Returns once scheduled; the consumer is not
  // blocked during the delay.
  Result<RetryDecision> retry_later(const Delivery& delivery, std::string_view reason,
                                    std::string_view error_type = "TransientError");
  // A permanent failure or a malformed message: publish the original body to
  // queue.<topic>.dlq with the failure headers and ack the original, in one transaction.
  Status dead_letter(const Delivery& delivery, std::string_view reason,
                     std::string_view error_type);

  // Publishes `payload` (a JSON object) to the exchange with routing key `topic`, adding
  // `_metadata`, delivery_mode 2 and the correlation_id property; returns after the broker's
  // confirm. An empty `correlation_id` mints a new one.
  Status publish(std::string_view topic, nlohmann::json payload,
                 std::string_view correlation_id);
  // Publishes bytes as they are (tools and tests); confirmed like publish(). `mandatory`
  // turns "no queue took it" into an error.
  Status publish_raw(std::string_view exchange, std::string_view routing_key,
                     OutgoingMessage message, bool mandatory = false);

  // Cancels the consumers (graceful shutdown): no new deliveries; settling still works.
  Status stop_consuming();
  // Closes the connection and joins the I/O thread. Unsettled deliveries go back to the queue.
  void stop();

  bool connected() const { return connected_.load(); }
  // The retry schedule retry_later() follows (callers decide exhaustion with it up front).
  const RetryPolicy& retry_policy() const { return options_.retry; }
  BrokerStats stats() const;

 private:
  struct Subscription {
    std::string topic;
    std::string queue;
    std::uint16_t channel = 0;
    int prefetch = 1;
    std::string consumer_tag;
  };
  struct Command {
    std::function<Status()> run;
    std::promise<Status> done;
  };
  struct ScheduledRetry;
  struct IoState;

  BrokerClient(BrokerOptions options, BrokerUrl url);
  // Runs `fn` on the I/O thread and waits for its Status.
  Status submit(std::function<Status()> fn);
  void wake_io();

  // I/O thread.
  void io_loop();
  Status connect_and_setup();
  void drop_connection(const Status& why);
  void run_commands();
  void run_due_retries();
  void wait_for_input();
  void pump_events();
  void handle_event(InboundEvent event);
  Status publish_confirmed(std::string_view exchange, std::string_view routing_key,
                           bool mandatory, const OutgoingMessage& message);
  Status check_settleable(const Delivery& delivery);
  // Note [Republish and ack commit together].
  Status republish_and_ack(const Delivery& delivery, std::string_view queue,
                           const OutgoingMessage& message);
  // Drops the connection after a settlement failed half-way (returns `why`).
  Status abandon_settlement(const Status& why);
  Status do_dead_letter(const Delivery& delivery, std::string_view reason,
                        std::string_view error_type);
  void sleep_backoff(std::chrono::milliseconds delay);

  const BrokerOptions options_;
  const BrokerUrl url_;
  std::vector<Subscription> subscriptions_;  // fixed by start()
  std::unique_ptr<IoState> io_;              // touched by the I/O thread only
  std::thread io_thread_;
  int wake_fd_ = -1;  // eventfd that interrupts the I/O thread's poll()

  std::mutex mutex_;  // guards commands_, inbox_, stopping_, io_running_
  std::condition_variable inbox_cv_;
  std::condition_variable command_cv_;
  std::deque<std::unique_ptr<Command>> commands_;
  std::deque<Delivery> inbox_;
  bool stopping_ = false;
  bool io_running_ = false;
  std::atomic<bool> connected_{false};
  std::promise<Status> started_;
  bool start_reported_ = false;  // I/O thread only

  std::atomic<std::uint64_t> connects_{0}, published_{0}, acked_{0}, retried_{0},
      dead_lettered_{0}, stale_{0};
};

}  // namespace segmentor::messaging
