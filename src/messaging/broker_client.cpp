#include "messaging/broker_client.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <utility>

#include <spdlog/spdlog.h>

namespace segmentor::messaging {

// Note [One I/O thread]
// rabbitmq-c connections are not thread-safe, and a publish with confirms must keep reading
// frames (deliveries, heartbeats, the confirm itself) until its confirm arrives. So one thread
// owns the connection and does all of it: it polls the socket and an eventfd; the public methods
// queue a command, write the eventfd and wait for the command's Status. Commands run one at a
// time, so a publish and its confirm are never interleaved with another publish, which also
// makes a basic.return unambiguous. Deliveries go to an in-memory inbox that next() drains.
//
// Note [Stale delivery tags]
// A delivery tag means something only on the channel of the connection that issued it. Each
// connection gets a new epoch; a Delivery remembers its epoch, and ack/retry/dead-letter of an
// older epoch is refused without touching the broker, which has already requeued the message
// and will deliver it again (the application deduplicates by asset id). Acking an old tag on
// the new connection would instead ack some other message, or close the channel. On reconnect
// the inbox is emptied of old deliveries and scheduled retries are dropped for the same reason.
//
// Note [Republish and ack commit together]
// A retry republishes the message to our own queue (x-retry-count + 1) and acks the original; a
// dead-letter publishes it to queue.<topic>.dlq and acks the original. These used to be two
// steps: a publish on the confirm channel, waited for, then a basic.ack on the consumer channel.
// Every way the second step could miss after the first had landed left two messages:
//   - the connection dropped, the process was killed (kill -9, OOM) or the broker closed the
//     connection between the confirm and the ack;
//   - basic.ack has no reply: written to the socket, it is still lost if the connection dies
//     before the broker reads it;
//   - the confirm did not come within confirm_timeout, or the connection broke while waiting
//     for it: the original was nacked back to the queue, yet the publish may have been stored.
// The broker then requeues the original (same x-retry-count, redelivered) next to the copy. For
// a retry that forks one failing message into two independent retry chains, each of which ends
// in its own dead-letter (which fits the fleet test run that once found two); for a
// dead-letter it leaves a dead-lettered copy plus the original, processed again. Nothing was
// ever lost: the ack was only sent after the confirm.
//
// So the consumer channels are transactional (tx.select at connect): the republish goes out on
// the channel that delivered the original, then its ack, then tx.commit. RabbitMQ applies a
// transaction's publishes and acks at commit, and discards them when the channel closes before
// it (client gone, connection lost); so either the copy exists and the original is acked, or
// neither happened and the original is requeued. commit-ok is also RabbitMQ's point of
// durability for the publish, as a confirm would be. If commit-ok itself is lost, the caller
// sees a failure although the broker committed: one copy still, the retry. Any failure half-way
// drops the connection (abandon_settlement), which rolls the transaction back.
//
// Why not something else: a channel is either transactional or in confirm mode, and an ack must
// go on the channel that delivered the message, so the publish cannot stay on the confirm
// channel. Deduplicating in the database would need an id per message that every replica
// agrees on and that the wire contract does not carry. Events (publish()) keep the confirm
// channel. The price: a plain ack is also a tx.commit, one round trip on the I/O thread (the ack
// is then known to be applied when ack() returns).
//
// Limits: with a transaction RabbitMQ sends a mandatory publish's basic.return only at commit,
// after the ack took effect, so the target queue is checked first (passive declare; missing:
// drop the connection, whose re-setup declares it again); a queue deleted between that check and
// the commit loses the message, logged as an error. RabbitMQ does not promise atomicity when the
// broker itself crashes during tx.commit: that may still leave both copies (at-least-once, as
// CONTRACT §1 allows). And a message whose handling succeeded but whose ack was lost is handled
// again (idempotent by asset id), as before.

namespace {

constexpr std::uint16_t kPublishChannel = 1;
constexpr std::uint16_t kFirstConsumerChannel = 2;
// Longest single wait in poll(): bounds heartbeat servicing and the retry timer's latency.
constexpr std::chrono::milliseconds kMaxPollWait{200};
// Events read in one go before the loop looks at commands again.
constexpr int kMaxEventsPerPump = 64;

using SteadyClock = std::chrono::steady_clock;

}  // namespace

struct BrokerClient::ScheduledRetry {
  Delivery delivery;
  std::string reason;
};

struct BrokerClient::IoState {
  std::unique_ptr<AmqpConnection> connection;
  std::uint64_t epoch = 0;
  // (channel, tag) of deliveries handed out and not settled yet, on this connection.
  std::set<std::pair<std::uint16_t, std::uint64_t>> outstanding;
  std::multimap<SteadyClock::time_point, ScheduledRetry> scheduled;
  // Publisher-confirm state of the one publish in flight.
  std::uint64_t publish_seq = 0;
  bool confirm_done = false;
  bool confirm_nacked = false;
  std::optional<Returned> returned;
  std::chrono::milliseconds backoff{0};
};

Result<std::unique_ptr<BrokerClient>> BrokerClient::create(BrokerOptions options) {
  SEGMENTOR_ASSIGN_OR_RETURN(BrokerUrl url, parse_broker_url(options.url));
  if (options.max_concurrent_batches < 1) {
    return invalid_argument("max_concurrent_batches must be >= 1");
  }
  if (options.confirm_timeout.count() <= 0 || options.initial_backoff.count() <= 0 ||
      options.max_backoff < options.initial_backoff) {
    return invalid_argument("broker timeouts and back-off must be positive, max >= initial");
  }
  std::unique_ptr<BrokerClient> client(new BrokerClient(std::move(options), std::move(url)));
  if (client->wake_fd_ < 0) return internal_error("eventfd failed");
  return client;
}

BrokerClient::BrokerClient(BrokerOptions options, BrokerUrl url)
    : options_(std::move(options)), url_(std::move(url)), io_(std::make_unique<IoState>()) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

BrokerClient::~BrokerClient() {
  stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

Status BrokerClient::start(const std::vector<std::string>& topics) {
  std::vector<Subscription> subscriptions;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < topics.size(); ++i) {
    if (topics[i].empty() || !seen.insert(topics[i]).second) {
      return invalid_argument("subscription topics must be non-empty and distinct");
    }
    Subscription sub;
    sub.topic = topics[i];
    sub.queue = queue_for(topics[i]);
    sub.channel = static_cast<std::uint16_t>(kFirstConsumerChannel + i);
    sub.prefetch = prefetch_for(topics[i], options_.max_concurrent_batches);
    subscriptions.push_back(std::move(sub));
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (io_running_ || stopping_ || io_thread_.joinable()) {
      return invalid_argument("BrokerClient::start called twice");
    }
    io_running_ = true;
  }
  subscriptions_ = std::move(subscriptions);
  std::future<Status> started = started_.get_future();
  io_thread_ = std::thread([this] { io_loop(); });
  Status status = started.get();
  if (!status.ok()) stop();
  return status;
}

void BrokerClient::wake_io() {
  std::uint64_t one = 1;
  // A full counter still wakes the reader; nothing to do on failure.
  [[maybe_unused]] ssize_t written = write(wake_fd_, &one, sizeof(one));
}

Status BrokerClient::submit(std::function<Status()> fn) {
  auto command = std::make_unique<Command>();
  command->run = std::move(fn);
  std::future<Status> done = command->done.get_future();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!io_running_ || stopping_) return unavailable("broker client is not running");
    commands_.push_back(std::move(command));
  }
  command_cv_.notify_all();
  wake_io();
  return done.get();
}

Result<std::optional<Delivery>> BrokerClient::next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  inbox_cv_.wait_for(lock, timeout, [this] { return !inbox_.empty() || !io_running_; });
  if (!inbox_.empty()) {
    Delivery delivery = std::move(inbox_.front());
    inbox_.pop_front();
    return std::optional<Delivery>(std::move(delivery));
  }
  if (!io_running_) return unavailable("broker client is stopped");
  return std::optional<Delivery>{};
}

Status BrokerClient::ack(const Delivery& delivery) {
  return submit([this, &delivery]() -> Status {
    SEGMENTOR_RETURN_IF_ERROR(check_settleable(delivery));
    io_->outstanding.erase({delivery.channel, delivery.delivery_tag});
    // A transactional channel: the ack takes effect at commit.
    AmqpConnection& conn = *io_->connection;
    Status status = conn.ack(delivery.channel, delivery.delivery_tag);
    if (status.ok()) status = conn.tx_commit(delivery.channel);
    if (!status.ok()) return abandon_settlement(status.with_context("ack"));
    ++acked_;
    return Status::Ok();
  });
}

Result<RetryDecision> BrokerClient::retry_later(const Delivery& delivery, std::string_view reason,
                                                std::string_view error_type) {
  if (retries_exhausted(options_.retry, delivery.retry_count)) {
    SEGMENTOR_RETURN_IF_ERROR(dead_letter(delivery, reason, error_type));
    return RetryDecision::kDeadLettered;
  }
  Status scheduled = submit([this, &delivery, reason]() -> Status {
    SEGMENTOR_RETURN_IF_ERROR(check_settleable(delivery));
    // From here the I/O thread owns the settlement: the application can no longer ack it.
    io_->outstanding.erase({delivery.channel, delivery.delivery_tag});
    auto due = SteadyClock::now() + retry_delay(options_.retry, delivery.retry_count);
    io_->scheduled.emplace(due, ScheduledRetry{delivery, std::string(reason)});
    return Status::Ok();
  });
  if (!scheduled.ok()) return scheduled;
  return RetryDecision::kScheduled;
}

Status BrokerClient::dead_letter(const Delivery& delivery, std::string_view reason,
                                 std::string_view error_type) {
  return submit([this, &delivery, reason, error_type]() -> Status {
    SEGMENTOR_RETURN_IF_ERROR(check_settleable(delivery));
    io_->outstanding.erase({delivery.channel, delivery.delivery_tag});
    return do_dead_letter(delivery, reason, error_type);
  });
}

Status BrokerClient::publish(std::string_view topic, nlohmann::json payload,
                             std::string_view correlation_id) {
  std::string correlation = correlation_id.empty() ? uuid4() : std::string(correlation_id);
  SEGMENTOR_ASSIGN_OR_RETURN(
      nlohmann::json body,
      with_metadata(std::move(payload), topic, correlation, std::chrono::system_clock::now()));
  OutgoingMessage message;
  // Replace invalid UTF-8 rather than throw: a path with odd bytes must not kill the worker.
  message.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  message.correlation_id = std::move(correlation);
  return publish_raw(kExchange, topic, std::move(message), /*mandatory=*/false);
}

Status BrokerClient::publish_raw(std::string_view exchange, std::string_view routing_key,
                                 OutgoingMessage message, bool mandatory) {
  return submit([this, exchange, routing_key, &message, mandatory]() -> Status {
    return publish_confirmed(exchange, routing_key, mandatory, message);
  });
}

Status BrokerClient::stop_consuming() {
  return submit([this]() -> Status {
    if (!io_->connection) return unavailable("not connected to the broker");
    for (Subscription& sub : subscriptions_) {
      if (sub.consumer_tag.empty()) continue;
      SEGMENTOR_RETURN_IF_ERROR(io_->connection->cancel(sub.channel, sub.consumer_tag));
      sub.consumer_tag.clear();
    }
    return Status::Ok();
  });
}

void BrokerClient::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  command_cv_.notify_all();
  inbox_cv_.notify_all();
  if (wake_fd_ >= 0) wake_io();
  if (io_thread_.joinable()) io_thread_.join();
}

BrokerStats BrokerClient::stats() const {
  BrokerStats s;
  s.connects = connects_.load();
  s.published = published_.load();
  s.acked = acked_.load();
  s.retried = retried_.load();
  s.dead_lettered = dead_lettered_.load();
  s.stale_deliveries = stale_.load();
  return s;
}

// ---------------------------------------------------------------------------------------------
// I/O thread

void BrokerClient::io_loop() {
  const auto start_deadline = SteadyClock::now() + options_.start_timeout;
  io_->backoff = options_.initial_backoff;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) break;
    }
    if (!io_->connection) {
      Status status = connect_and_setup();
      if (status.ok()) {
        io_->backoff = options_.initial_backoff;
        if (!start_reported_) {
          start_reported_ = true;
          started_.set_value(Status::Ok());
        }
        continue;
      }
      if (!start_reported_ &&
          (status.code() != ErrorCode::kUnavailable || SteadyClock::now() >= start_deadline)) {
        start_reported_ = true;
        started_.set_value(status.with_context("cannot start the broker client"));
        break;
      }
      spdlog::warn("broker {}: {}; retrying in {} ms", url_.display(), status.to_string(),
                   io_->backoff.count());
      sleep_backoff(io_->backoff);
      io_->backoff = std::min(io_->backoff * 2, options_.max_backoff);
      continue;
    }
    run_commands();
    if (io_->connection && io_->connection->healthy()) run_due_retries();
    if (io_->connection && io_->connection->healthy()) {
      wait_for_input();
      pump_events();
    }
    if (io_->connection && !io_->connection->healthy()) {
      drop_connection(unavailable("connection lost"));
    }
  }
  // Shutting down: fail what is queued, close politely (unsettled messages are requeued).
  std::deque<std::unique_ptr<Command>> pending;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    io_running_ = false;
    pending.swap(commands_);
    inbox_.clear();
  }
  inbox_cv_.notify_all();
  for (auto& command : pending) command->done.set_value(unavailable("broker client stopped"));
  io_->scheduled.clear();
  io_->connection.reset();
  connected_ = false;
  if (!start_reported_) {
    start_reported_ = true;
    started_.set_value(unavailable("broker client stopped before it connected"));
  }
}

void BrokerClient::sleep_backoff(std::chrono::milliseconds delay) {
  // Jitter (±20 %) keeps a fleet of workers from reconnecting in lockstep.
  thread_local std::mt19937 generator{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  auto deadline = SteadyClock::now() +
                  std::chrono::duration_cast<SteadyClock::duration>(delay * jitter(generator));
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    // Commands arriving while disconnected fail at once rather than wait out the back-off.
    while (!commands_.empty()) {
      auto command = std::move(commands_.front());
      commands_.pop_front();
      command->done.set_value(unavailable("not connected to the broker " + url_.display()));
    }
    if (command_cv_.wait_until(lock, deadline) == std::cv_status::timeout) break;
  }
}

Status BrokerClient::connect_and_setup() {
  SEGMENTOR_ASSIGN_OR_RETURN(io_->connection, AmqpConnection::create(url_, options_.connect));
  AmqpConnection& conn = *io_->connection;
  ++io_->epoch;
  io_->publish_seq = 0;
  io_->outstanding.clear();
  io_->scheduled.clear();
  auto fail = [this](const Status& status) {
    io_->connection.reset();
    return status;
  };
  Status status = conn.open_channel(kPublishChannel);
  if (status.ok()) status = conn.confirm_select(kPublishChannel);
  if (status.ok()) {
    status = conn.declare_exchange(kPublishChannel, kExchange, "topic", /*durable=*/true,
                                   /*passive=*/false);
  }
  for (const Subscription& sub : subscriptions_) {
    if (!status.ok()) break;
    status = conn.declare_queue(kPublishChannel, sub.queue, /*passive=*/false).status();
    if (status.ok()) status = conn.bind_queue(kPublishChannel, sub.queue, kExchange, sub.topic);
    if (status.ok()) {
      status = conn.declare_queue(kPublishChannel, dead_letter_queue_for(sub.topic), false).status();
    }
  }
  for (Subscription& sub : subscriptions_) {
    if (!status.ok()) break;
    status = conn.open_channel(sub.channel);
    // Note [Republish and ack commit together].
    if (status.ok()) status = conn.tx_select(sub.channel);
    if (status.ok()) status = conn.qos(sub.channel, static_cast<std::uint16_t>(sub.prefetch));
    if (status.ok()) {
      Result<std::string> tag = conn.consume(sub.channel, sub.queue);
      status = tag.status();
      if (tag.ok()) sub.consumer_tag = *tag;
    }
  }
  if (!status.ok()) return fail(status);
  ++connects_;
  connected_ = true;
  spdlog::info("broker {}: connected (epoch {}, heartbeat {} s, {} consumers)", url_.display(),
               io_->epoch, conn.heartbeat_seconds(), subscriptions_.size());
  return Status::Ok();
}

void BrokerClient::drop_connection(const Status& why) {
  spdlog::warn("broker {}: {}; reconnecting", url_.display(), why.to_string());
  connected_ = false;
  io_->connection.reset();
  io_->outstanding.clear();
  io_->scheduled.clear();  // the broker requeues the originals: Note [Stale delivery tags]
  std::size_t dropped = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    dropped = inbox_.size();
    inbox_.clear();
  }
  if (dropped > 0) spdlog::info("broker: {} undelivered messages will be redelivered", dropped);
}

void BrokerClient::run_commands() {
  while (true) {
    std::unique_ptr<Command> command;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (commands_.empty()) return;
      command = std::move(commands_.front());
      commands_.pop_front();
    }
    Status status = (io_->connection && io_->connection->healthy())
                        ? command->run()
                        : unavailable("not connected to the broker " + url_.display());
    command->done.set_value(std::move(status));
  }
}

void BrokerClient::run_due_retries() {
  while (!io_->scheduled.empty() && io_->scheduled.begin()->first <= SteadyClock::now()) {
    ScheduledRetry retry = std::move(io_->scheduled.begin()->second);
    io_->scheduled.erase(io_->scheduled.begin());
    const Delivery& delivery = retry.delivery;
    if (delivery.connection_epoch != io_->epoch) continue;  // Note [Stale delivery tags]
    OutgoingMessage message;
    message.body = delivery.body;
    message.correlation_id = delivery.correlation_id;
    message.headers = retry_headers(delivery.headers, delivery.retry_count + 1);
    // Default exchange, routing key = our own queue: the retry goes to this service's queue only,
    // not to other subscribers of the topic; any replica consuming that queue may take it.
    Status settled = republish_and_ack(delivery, delivery.queue, message);
    if (settled.ok()) {
      ++retried_;
      spdlog::info("retry {} of a {} message scheduled ({})", delivery.retry_count + 1,
                   delivery.topic, retry.reason);
    } else {
      spdlog::warn(
          "retry of a {} message failed; the broker keeps one copy, normally the original: {}",
          delivery.topic, settled.to_string());
    }
    if (!io_->connection || !io_->connection->healthy()) return;
  }
}

Status BrokerClient::do_dead_letter(const Delivery& delivery, std::string_view reason,
                                    std::string_view error_type) {
  OutgoingMessage message;
  message.body = delivery.body;
  message.correlation_id = delivery.correlation_id;
  message.headers = dead_letter_headers(delivery.headers, delivery.topic, reason, error_type,
                                        delivery.retry_count);
  SEGMENTOR_RETURN_IF_ERROR(
      republish_and_ack(delivery, dead_letter_queue_for(delivery.topic), message));
  ++dead_lettered_;
  spdlog::warn("dead-lettered a {} message ({}): {}", delivery.topic, error_type,
               truncate_utf8(reason, kMaxFailureReasonChars));
  return Status::Ok();
}

// Note [Republish and ack commit together].
Status BrokerClient::republish_and_ack(const Delivery& delivery, std::string_view queue,
                                       const OutgoingMessage& message) {
  const std::string what = "republish to queue '" + std::string(queue) + "'";
  if (!io_->connection || !io_->connection->healthy()) {
    return unavailable(what + ": not connected to the broker " + url_.display());
  }
  AmqpConnection& conn = *io_->connection;
  // Its basic.return would only come after the commit, when the ack has taken effect.
  Status status = conn.declare_queue(kPublishChannel, queue, /*passive=*/true).status();
  if (status.ok()) status = conn.publish(delivery.channel, "", queue, /*mandatory=*/true, message);
  if (status.ok() && options_.between_republish_and_ack) {
    options_.between_republish_and_ack(conn.socket_fd());
  }
  if (status.ok()) status = conn.ack(delivery.channel, delivery.delivery_tag);
  if (status.ok()) status = conn.tx_commit(delivery.channel);
  if (!status.ok()) return abandon_settlement(status.with_context(what));
  ++published_;
  ++acked_;
  return Status::Ok();
}

Status BrokerClient::abandon_settlement(const Status& why) {
  // The channel's transaction is undecided (or the channel is gone): closing the connection
  // makes the broker discard what was not committed and requeue the original.
  if (io_->connection) drop_connection(why);
  return why;
}

Status BrokerClient::check_settleable(const Delivery& delivery) {
  if (delivery.connection_epoch != io_->epoch) {
    ++stale_;
    return unavailable("delivery of " + delivery.topic +
                       " came on an earlier broker connection; the broker redelivers it");
  }
  if (io_->outstanding.count({delivery.channel, delivery.delivery_tag}) == 0) {
    return invalid_argument("delivery " + std::to_string(delivery.delivery_tag) + " of " +
                            delivery.topic + " was already settled");
  }
  return Status::Ok();
}

Status BrokerClient::publish_confirmed(std::string_view exchange, std::string_view routing_key,
                                       bool mandatory, const OutgoingMessage& message) {
  if (!io_->connection || !io_->connection->healthy()) {
    return unavailable("not connected to the broker " + url_.display());
  }
  const std::string what = exchange.empty()
                               ? "publish to queue '" + std::string(routing_key) + "'"
                               : "publish to '" + std::string(exchange) + "' with routing key '" +
                                     std::string(routing_key) + "'";
  ++io_->publish_seq;
  io_->confirm_done = false;
  io_->confirm_nacked = false;
  io_->returned.reset();
  SEGMENTOR_RETURN_IF_ERROR(
      io_->connection->publish(kPublishChannel, exchange, routing_key, mandatory, message));
  const auto deadline = SteadyClock::now() + options_.confirm_timeout;
  while (!io_->confirm_done) {
    auto now = SteadyClock::now();
    if (now >= deadline) {
      return unavailable(what + ": the broker did not confirm within " +
                         std::to_string(options_.confirm_timeout.count()) + " ms");
    }
    auto wait = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now),
                         kMaxPollWait);
    Result<std::optional<InboundEvent>> event = io_->connection->poll(wait);
    if (!event.ok()) return event.status().with_context(what + ": no confirm");
    if (event->has_value()) handle_event(std::move(**event));
    if (!io_->connection || !io_->connection->healthy()) {
      return unavailable(what + ": connection lost before the confirm");
    }
  }
  if (io_->returned) {
    return not_found(what + ": no queue took it (" + std::to_string(io_->returned->reply_code) +
                     " " + io_->returned->reply_text + ")");
  }
  if (io_->confirm_nacked) return unavailable(what + ": the broker refused it (basic.nack)");
  ++published_;
  return Status::Ok();
}

void BrokerClient::wait_for_input() {
  AmqpConnection& conn = *io_->connection;
  if (conn.has_buffered_data()) return;
  auto wait = kMaxPollWait;
  if (!io_->scheduled.empty()) {
    auto until_due = std::chrono::duration_cast<std::chrono::milliseconds>(
        io_->scheduled.begin()->first - SteadyClock::now());
    wait = std::clamp(until_due + std::chrono::milliseconds(1), std::chrono::milliseconds(0),
                      kMaxPollWait);
  }
  pollfd fds[2] = {{conn.socket_fd(), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  (void)::poll(fds, 2, static_cast<int>(wait.count()));
  if ((fds[1].revents & POLLIN) != 0) {
    std::uint64_t count = 0;
    [[maybe_unused]] ssize_t got = read(wake_fd_, &count, sizeof(count));
  }
}

void BrokerClient::pump_events() {
  // Always look once, even when poll() saw nothing: that is when rabbitmq-c sends heartbeats
  // and notices a silent broker.
  for (int i = 0; i < kMaxEventsPerPump; ++i) {
    Result<std::optional<InboundEvent>> event = io_->connection->poll(std::chrono::milliseconds(0));
    if (!event.ok() || !event->has_value()) return;
    handle_event(std::move(**event));
    if (!io_->connection || !io_->connection->healthy()) return;
  }
}

void BrokerClient::handle_event(InboundEvent event) {
  if (auto* in = std::get_if<InboundDelivery>(&event)) {
    auto sub = std::find_if(subscriptions_.begin(), subscriptions_.end(),
                            [&](const Subscription& s) { return s.channel == in->channel; });
    if (sub == subscriptions_.end()) {
      spdlog::error("broker: delivery on unknown channel {}; requeueing it", in->channel);
      (void)io_->connection->nack(in->channel, in->delivery_tag, /*requeue=*/true);
      return;
    }
    Delivery delivery;
    delivery.topic = sub->topic;
    delivery.queue = sub->queue;
    delivery.body = std::move(in->body);
    delivery.correlation_id = std::move(in->correlation_id);
    delivery.headers = std::move(in->headers);
    delivery.retry_count = header_int(delivery.headers, kRetryCountHeader).value_or(0);
    delivery.redelivered = in->redelivered;
    delivery.connection_epoch = io_->epoch;
    delivery.channel = in->channel;
    delivery.delivery_tag = in->delivery_tag;
    io_->outstanding.insert({in->channel, in->delivery_tag});
    {
      std::lock_guard<std::mutex> lock(mutex_);
      inbox_.push_back(std::move(delivery));
    }
    inbox_cv_.notify_one();
    return;
  }
  const std::uint64_t seq = io_->publish_seq;
  auto covers = [seq](std::uint64_t tag, bool multiple) {
    return tag == seq || (multiple && tag >= seq);
  };
  if (auto* ack = std::get_if<ConfirmAck>(&event)) {
    if (ack->channel == kPublishChannel && covers(ack->delivery_tag, ack->multiple)) {
      io_->confirm_done = true;
    }
    return;
  }
  if (auto* nack = std::get_if<ConfirmNack>(&event)) {
    if (nack->channel == kPublishChannel && covers(nack->delivery_tag, nack->multiple)) {
      io_->confirm_done = true;
      io_->confirm_nacked = true;
    }
    return;
  }
  if (auto* returned = std::get_if<Returned>(&event)) {
    if (returned->channel != kPublishChannel) {
      // A committed retry or dead-letter: Note [Republish and ack commit together], limits.
      spdlog::error(
          "broker returned a committed republish to '{}' ({} {}): the queue went away after it "
          "was checked, and that message is lost",
          returned->routing_key, returned->reply_code, returned->reply_text);
      return;
    }
    io_->returned = *returned;
    return;
  }
  if (auto* closed = std::get_if<ChannelClosed>(&event)) {
    // Channels close only on errors (e.g. PRECONDITION_FAILED): start afresh with a clean slate.
    spdlog::error("broker closed channel {}: {} {}", closed->channel, closed->reply_code,
                  closed->reply_text);
    drop_connection(unavailable("channel " + std::to_string(closed->channel) + " closed: " +
                                closed->reply_text));
    return;
  }
  if (std::holds_alternative<ConsumerCancelled>(event)) {
    drop_connection(unavailable("the broker cancelled a consumer (queue deleted?)"));
  }
}

}  // namespace segmentor::messaging
