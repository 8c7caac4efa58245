// BrokerClient against a real RabbitMQ (label: broker). Each test uses its own topics, so tests
// sharing one node do not see each other's messages.
#include "messaging/broker_client.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <map>
#include <thread>

#include "messaging/events.h"
#include "private_broker.h"

namespace segmentor::messaging {
namespace {

using namespace std::chrono_literals;
using testing::PrivateBroker;

class BrokerClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto started = PrivateBroker::create(&skip_reason_);
    ASSERT_TRUE(started.ok()) << started.status().to_string();
    broker_ = std::move(started).value().release();
  }
  static void TearDownTestSuite() {
    delete broker_;
    broker_ = nullptr;
  }
  void SetUp() override {
    if (broker_ == nullptr) GTEST_SKIP() << skip_reason_;
    prefix_ = "test." + uuid4().substr(0, 8);
  }

  BrokerOptions options() const {
    BrokerOptions o;
    o.url = broker_->url();
    o.retry.base_delay = 100ms;  // 100, 200, 400 ms: the schedule's shape, faster
    o.confirm_timeout = 5s;
    o.start_timeout = 10s;
    o.connect.heartbeat_seconds = 5;
    return o;
  }
  std::unique_ptr<BrokerClient> started_client(const std::vector<std::string>& topics) {
    return started_client(topics, options());
  }
  std::unique_ptr<BrokerClient> started_client(const std::vector<std::string>& topics,
                                               const BrokerOptions& with) {
    auto client = BrokerClient::create(with);
    EXPECT_TRUE(client.ok()) << client.status().to_string();
    if (!client.ok()) return nullptr;
    Status status = (*client)->start(topics);
    EXPECT_TRUE(status.ok()) << status.to_string();
    return std::move(client).value();
  }
  static Delivery must_next(BrokerClient& client, std::chrono::milliseconds timeout = 10s) {
    auto delivery = client.next(timeout);
    EXPECT_TRUE(delivery.ok()) << delivery.status().to_string();
    if (!delivery.ok() || !delivery->has_value()) {
      ADD_FAILURE() << "no delivery within " << timeout.count() << " ms";
      return {};
    }
    return std::move(**delivery);
  }
  std::string topic(const std::string& name) const { return prefix_ + "." + name; }
  // Restart (clean shutdown: the broker closes our connection) or crash (the socket just dies):
  // an unacked delivery, a retry waiting for its delay and a new publish all arrive afterwards,
  // each exactly once, and the old delivery's tag is never used on the new connection.
  void run_reconnect_scenario(bool crash) {
    constexpr auto kRetryDelay = 12s;
    const std::string t = topic("image.ready");
    BrokerOptions o = options();
    o.retry.base_delay = kRetryDelay;  // still waiting when the broker goes away
    auto made = BrokerClient::create(o);
    ASSERT_TRUE(made.ok());
    auto client = std::move(made).value();
    ASSERT_TRUE(client->start({t}).ok());
    ASSERT_TRUE(client->publish(t, {{"image_id", "before"}}, "corr-1").ok());
    Delivery before = must_next(*client);
    ASSERT_TRUE(client->publish(t, {{"image_id", "retry"}}, "corr-2").ok());
    Delivery to_retry = must_next(*client);
    ASSERT_TRUE(client->retry_later(to_retry, "transient", "TransientError").ok());
    const auto retry_due = std::chrono::steady_clock::now() + kRetryDelay;

    Status bounced = crash ? broker_->crash_and_start() : broker_->restart();
    ASSERT_TRUE(bounced.ok()) << bounced.to_string();
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (client->stats().connects < 2 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(100ms);
    }
    ASSERT_GE(client->stats().connects, 2u) << "no reconnect";
    Status stale = client->ack(before);
    EXPECT_EQ(stale.code(), ErrorCode::kUnavailable) << stale.to_string();
    EXPECT_GE(client->stats().stale_deliveries, 1u);

    ASSERT_TRUE(client->publish(t, {{"image_id", "after"}}, "corr-3").ok());
    std::map<std::string, int> seen;
    std::map<std::string, std::int64_t> retry_counts;
    // Collect until after the retry would have been due, to see that no scheduled copy escapes.
    auto collect_deadline = std::max(std::chrono::steady_clock::now() + 3s, retry_due + 1s);
    while (std::chrono::steady_clock::now() < collect_deadline) {
      auto next = client->next(200ms);
      ASSERT_TRUE(next.ok());
      if (!next->has_value()) continue;
      auto body = parse_json_body((*next)->body);
      ASSERT_TRUE(body.ok());
      std::string id = (*body)["image_id"].get<std::string>();
      seen[id]++;
      retry_counts[id] = (*next)->retry_count;
      ASSERT_TRUE(client->ack(**next).ok());
    }
    EXPECT_EQ(seen["before"], 1);  // persistent + durable: survived the broker going away
    EXPECT_EQ(seen["retry"], 1);   // the original, redelivered; the dropped schedule sent nothing
    EXPECT_EQ(retry_counts["retry"], 0);
    EXPECT_EQ(seen["after"], 1);
    EXPECT_EQ(seen.size(), 3u);
  }

  static inline PrivateBroker* broker_ = nullptr;
  static inline std::string skip_reason_;
  std::string prefix_;
};

std::string header_string(const Headers& headers, std::string_view key) {
  const HeaderValue* value = find_header(headers, key);
  if (value == nullptr || !std::holds_alternative<std::string>(*value)) return "<absent>";
  return std::get<std::string>(*value);
}

TEST_F(BrokerClientTest, DeclaresTheContractTopology) {
  const std::string asset = topic("image.ready");
  const std::string batch = topic("images.ready.batch");
  auto client = started_client({asset, batch});
  ASSERT_NE(client, nullptr);

  auto inspect = testing::connect(broker_->url());
  ASSERT_TRUE(inspect.ok()) << inspect.status().to_string();
  AmqpConnection& conn = **inspect;
  // Same properties: accepted. Any other durability or arguments: PRECONDITION_FAILED.
  EXPECT_TRUE(conn.declare_exchange(1, kExchange, "topic", true, /*passive=*/false).ok());
  EXPECT_TRUE(conn.declare_queue(1, queue_for(asset), /*passive=*/false).ok());
  EXPECT_TRUE(conn.declare_queue(1, dead_letter_queue_for(asset), /*passive=*/true).ok());
  auto non_durable = conn.declare_queue(1, queue_for(asset), false, /*durable=*/false);
  ASSERT_FALSE(non_durable.ok());
  EXPECT_NE(non_durable.status().message().find("PRECONDITION_FAILED"), std::string::npos);
  ASSERT_TRUE(conn.open_channel(1).ok());
  auto with_args = conn.declare_queue(1, queue_for(asset), false, true, /*ttl=*/60000);
  ASSERT_FALSE(with_args.ok());
  EXPECT_NE(with_args.status().message().find("x-message-ttl"), std::string::npos);

  // The broker's own view: durable, not auto-delete, not exclusive, no arguments, the binding,
  // and prefetch per consumer.
  auto queues = broker_->ctl("list_queues name durable auto_delete exclusive arguments");
  ASSERT_TRUE(queues.ok()) << queues.status().to_string();
  for (const std::string& queue : {queue_for(asset), queue_for(batch), dead_letter_queue_for(asset),
                                   dead_letter_queue_for(batch)}) {
    EXPECT_NE(queues->find(queue + "\ttrue\tfalse\tfalse\t[]\n"), std::string::npos)
        << queue << " in:\n"
        << *queues;
  }
  auto exchanges = broker_->ctl("list_exchanges name type durable auto_delete internal arguments");
  ASSERT_TRUE(exchanges.ok());
  EXPECT_NE(exchanges->find("product_video_matching\ttopic\ttrue\tfalse\tfalse\t[]"),
            std::string::npos)
      << *exchanges;
  auto bindings = broker_->ctl("list_bindings source_name destination_name routing_key");
  ASSERT_TRUE(bindings.ok());
  EXPECT_NE(bindings->find("product_video_matching\t" + queue_for(asset) + "\t" + asset),
            std::string::npos)
      << *bindings;
  auto consumers = broker_->ctl("list_consumers queue_name ack_required prefetch_count");
  ASSERT_TRUE(consumers.ok());
  EXPECT_NE(consumers->find(queue_for(asset) + "\ttrue\t2\n"), std::string::npos) << *consumers;
  EXPECT_NE(consumers->find(queue_for(batch) + "\ttrue\t1\n"), std::string::npos) << *consumers;
}

TEST_F(BrokerClientTest, StartFailsWhenAQueueExistsWithOtherArguments) {
  const std::string t = topic("image.ready");
  auto inspect = testing::connect(broker_->url());
  ASSERT_TRUE(inspect.ok());
  ASSERT_TRUE((*inspect)->declare_queue(1, queue_for(t), false, true, 1000).ok());
  auto client = BrokerClient::create(options());
  ASSERT_TRUE(client.ok());
  Status status = (*client)->start({t});
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find("PRECONDITION_FAILED"), std::string::npos) << status.to_string();
}

TEST_F(BrokerClientTest, PublishConsumeAckWithMetadataAndCorrelation) {
  const std::string t = topic("image.ready");
  auto client = started_client({t});
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->publish(t, {{"image_id", "i1"}}, "corr-42").ok());

  Delivery delivery = must_next(*client);
  EXPECT_EQ(delivery.topic, t);
  EXPECT_EQ(delivery.queue, queue_for(t));
  EXPECT_EQ(delivery.correlation_id, "corr-42");
  EXPECT_EQ(delivery.retry_count, 0);
  auto body = parse_json_body(delivery.body);
  ASSERT_TRUE(body.ok());
  EXPECT_EQ((*body)["image_id"], "i1");
  EXPECT_EQ((*body)["_metadata"]["topic"], t);
  EXPECT_EQ((*body)["_metadata"]["correlation_id"], "corr-42");
  EXPECT_EQ((*body)["_metadata"]["timestamp"].get<std::string>().back(), 'Z');
  EXPECT_EQ(resolve_correlation_id(delivery.correlation_id, &*body), "corr-42");

  ASSERT_TRUE(client->ack(delivery).ok());
  Status again = client->ack(delivery);
  EXPECT_EQ(again.code(), ErrorCode::kInvalidArgument) << again.to_string();
  auto nothing = client->next(300ms);
  ASSERT_TRUE(nothing.ok());
  EXPECT_FALSE(nothing->has_value());
  auto inspect = testing::connect(broker_->url());
  ASSERT_TRUE(inspect.ok());
  EXPECT_EQ(testing::message_count(**inspect, queue_for(t)), 0);
  EXPECT_GE(client->stats().published, 1u);
  EXPECT_EQ(client->stats().acked, 1u);
}

TEST_F(BrokerClientTest, UnroutableMandatoryPublishIsNotConfirmed) {
  auto client = started_client({});
  ASSERT_NE(client, nullptr);
  OutgoingMessage message;
  message.body = "{}";
  Status status = client->publish_raw("", "queue.does-not-exist." + prefix_, message, true);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), ErrorCode::kNotFound) << status.to_string();
  // The client is still usable.
  EXPECT_TRUE(client->publish(topic("nobody.listens"), {{"a", 1}}, "c").ok());
}

TEST_F(BrokerClientTest, MalformedMessageIsDeadLetteredWithHeaders) {
  const std::string t = topic("image.ready");
  auto client = started_client({t});
  ASSERT_NE(client, nullptr);
  OutgoingMessage bad;
  bad.body = "{\"image_id\": ";
  bad.correlation_id = "corr-bad";
  ASSERT_TRUE(client->publish_raw(kExchange, t, bad).ok());

  Delivery delivery = must_next(*client);
  auto parsed = parse_json_body(delivery.body);
  ASSERT_FALSE(parsed.ok());
  ASSERT_TRUE(client->dead_letter(delivery, parsed.status().message(), kMalformedMessage).ok());

  auto inspect = testing::connect(broker_->url());
  ASSERT_TRUE(inspect.ok());
  auto dead = testing::take(**inspect, dead_letter_queue_for(t), 1, 5s);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].body, bad.body);
  EXPECT_EQ(dead[0].correlation_id, "corr-bad");
  EXPECT_EQ(header_string(dead[0].headers, kOriginalTopicHeader), t);
  EXPECT_EQ(header_string(dead[0].headers, kErrorTypeHeader), "MalformedMessage");
  EXPECT_EQ(header_string(dead[0].headers, kFailureReasonHeader).rfind("invalid JSON", 0), 0u);
  EXPECT_EQ(header_int(dead[0].headers, kRetryCountHeader), 0);
  EXPECT_EQ(testing::message_count(**inspect, queue_for(t)), 0);  // acked, not left behind
}

TEST_F(BrokerClientTest, TransientFailureRetriesThroughOwnQueueThenDeadLetters) {
  const std::string t = topic("image.ready");
  auto inspect = testing::connect(broker_->url());
  ASSERT_TRUE(inspect.ok());
  // Another service's queue on the same topic: retries must not reach it.
  const std::string other = "other-service." + prefix_;
  ASSERT_TRUE((*inspect)->declare_exchange(1, kExchange, "topic", true, false).ok());
  ASSERT_TRUE((*inspect)->declare_queue(1, other, false).ok());
  ASSERT_TRUE((*inspect)->bind_queue(1, other, kExchange, t).ok());

  auto client = started_client({t});
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->publish(t, {{"image_id", "i1"}}, "corr-r").ok());

  auto last = std::chrono::steady_clock::now();
  for (int attempt = 0; attempt < 3; ++attempt) {
    Delivery delivery = must_next(*client);
    auto now = std::chrono::steady_clock::now();
    EXPECT_EQ(delivery.retry_count, attempt);
    EXPECT_EQ(delivery.topic, t);
    EXPECT_EQ(delivery.correlation_id, "corr-r");
    if (attempt > 0) {
      // Republished no earlier than the schedule says (100 ms × 2^(attempt-1)).
      EXPECT_GE(now - last, 100ms * (1 << (attempt - 1)) - 5ms) << "attempt " << attempt;
    }
    last = now;
    auto decision = client->retry_later(delivery, "database unavailable", "DatabaseError");
    ASSERT_TRUE(decision.ok()) << decision.status().to_string();
    EXPECT_EQ(*decision, RetryDecision::kScheduled);
    // The client owns it now: the application cannot settle it twice.
    EXPECT_EQ(client->ack(delivery).code(), ErrorCode::kInvalidArgument);
  }
  Delivery final_attempt = must_next(*client);
  EXPECT_EQ(final_attempt.retry_count, 3);
  auto decision = client->retry_later(final_attempt, "database still unavailable", "DatabaseError");
  ASSERT_TRUE(decision.ok()) << decision.status().to_string();
  EXPECT_EQ(*decision, RetryDecision::kDeadLettered);

  auto dead = testing::take(**inspect, dead_letter_queue_for(t), 1, 5s);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(header_int(dead[0].headers, kRetryCountHeader), 3);
  EXPECT_EQ(header_string(dead[0].headers, kErrorTypeHeader), "DatabaseError");
  EXPECT_EQ(header_string(dead[0].headers, kFailureReasonHeader), "database still unavailable");
  EXPECT_EQ(header_string(dead[0].headers, kOriginalTopicHeader), t);
  EXPECT_EQ(testing::message_count(**inspect, queue_for(t)), 0);
  EXPECT_EQ(testing::message_count(**inspect, other), 1);  // the original only, no retries
  EXPECT_EQ(client->stats().retried, 3u);
  EXPECT_EQ(client->stats().dead_lettered, 1u);
}

// Note [Republish and ack commit together]: options whose first retry or dead-letter breaks the
// connection's socket after the republish and before the ack; `broken` counts the settlements.
BrokerOptions first_settlement_breaks(BrokerOptions o, std::atomic<int>& broken) {
  o.between_republish_and_ack = [&broken](int socket_fd) {
    if (broken++ == 0) ::shutdown(socket_fd, SHUT_RDWR);  // only the first settlement dies
  };
  return o;
}

// Note [Republish and ack commit together]: a worker that loses its connection after it has
// republished a retry and before its ack reached the broker (played here by breaking the socket
// at that moment, as a kill -9 would) leaves ONE copy, the original, redelivered. Republishing
// with confirms and acking afterwards left two, the retry and the redelivered original, and each
// went on through its own retries to its own dead-letter.
TEST_F(BrokerClientTest, AConnectionLostBetweenRetryAndAckLeavesOneCopy) {
  const std::string t = topic("image.ready");
  std::atomic<int> broken{0};
  auto client = started_client({t}, first_settlement_breaks(options(), broken));
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->publish(t, {{"image_id", "fork"}}, "corr-f").ok());
  Delivery first = must_next(*client);
  auto decision = client->retry_later(first, "transient", "TransientError");
  ASSERT_TRUE(decision.ok()) << decision.status().to_string();
  ASSERT_EQ(*decision, RetryDecision::kScheduled);  // the connection breaks when it is due

  // Every copy acked once the client is back (reconnect and redelivery: well under 3 s). One
  // handed out on the broken connection cannot be acked there; the broker hands it out again.
  std::vector<Delivery> copies;
  const auto deadline = std::chrono::steady_clock::now() + 4s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto next = client->next(200ms);
    ASSERT_TRUE(next.ok());
    if (!next->has_value()) continue;
    if (client->ack(**next).ok()) copies.push_back(std::move(**next));
  }
  EXPECT_EQ(broken.load(), 1);
  EXPECT_GE(client->stats().connects, 2u);
  std::string counts;
  for (const Delivery& copy : copies) counts += " " + std::to_string(copy.retry_count);
  ASSERT_EQ(copies.size(), 1u) << "x-retry-count of each copy:" << counts;
  EXPECT_TRUE(copies[0].redelivered);
  EXPECT_EQ(copies[0].retry_count, 0);  // the retry was rolled back with the ack
  EXPECT_EQ(copies[0].body, first.body);
}

// The same for a dead-letter: the dead-letter queue holds a copy only once the original is
// acked, so a message dead-lettered again after such a loss is there once.
TEST_F(BrokerClientTest, AConnectionLostBetweenDeadLetterAndAckLeavesOneCopy) {
  const std::string t = topic("image.ready");
  std::atomic<int> broken{0};
  auto client = started_client({t}, first_settlement_breaks(options(), broken));
  ASSERT_NE(client, nullptr);
  auto inspect = testing::connect(broker_->url());
  ASSERT_TRUE(inspect.ok());
  ASSERT_TRUE(client->publish(t, {{"image_id", "dead"}}, "corr-d").ok());
  Delivery first = must_next(*client);
  Status lost = client->dead_letter(first, "bad input", "InvalidInput");
  EXPECT_EQ(lost.code(), ErrorCode::kUnavailable) << lost.to_string();

  Delivery again = must_next(*client);
  EXPECT_TRUE(again.redelivered);
  EXPECT_EQ(again.body, first.body);
  EXPECT_EQ(testing::message_count(**inspect, dead_letter_queue_for(t)), 0);
  ASSERT_TRUE(client->dead_letter(again, "bad input", "InvalidInput").ok());
  auto dead = testing::take(**inspect, dead_letter_queue_for(t), 10, 2s);
  EXPECT_EQ(dead.size(), 1u);
  EXPECT_EQ(testing::message_count(**inspect, queue_for(t)), 0);
  EXPECT_EQ(broken.load(), 2);
}

// In a transaction a mandatory publish is returned only at commit, after the ack took effect,
// so the client checks the target queue first: a dead-letter queue deleted under a running
// worker fails the dead-letter (the original goes back), and the reconnect declares it again.
TEST_F(BrokerClientTest, ADeletedDeadLetterQueueIsDeclaredAgainAndNothingIsLost) {
  const std::string t = topic("image.ready");
  auto client = started_client({t});
  ASSERT_NE(client, nullptr);
  auto inspect = testing::connect(broker_->url());
  ASSERT_TRUE(inspect.ok());
  ASSERT_TRUE((*inspect)->delete_queue(1, dead_letter_queue_for(t)).ok());
  ASSERT_TRUE(client->publish(t, {{"image_id", "no-dlq"}}, "corr-n").ok());
  Delivery first = must_next(*client);
  Status failed = client->dead_letter(first, "bad input", "InvalidInput");
  EXPECT_EQ(failed.code(), ErrorCode::kNotFound) << failed.to_string();

  Delivery again = must_next(*client);
  EXPECT_TRUE(again.redelivered);
  EXPECT_GE(client->stats().connects, 2u);
  ASSERT_TRUE(client->dead_letter(again, "bad input", "InvalidInput").ok());
  auto dead = testing::take(**inspect, dead_letter_queue_for(t), 10, 2s);
  EXPECT_EQ(dead.size(), 1u);
  EXPECT_EQ(testing::message_count(**inspect, queue_for(t)), 0);
}

TEST_F(BrokerClientTest, UnackedMessageIsRedeliveredWhenTheConsumerDies) {
  const std::string t = topic("keyframes.ready");
  auto first = started_client({t});
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(first->publish(t, {{"video_id", "v1"}}, "corr-d").ok());
  Delivery taken = must_next(*first);
  EXPECT_FALSE(taken.redelivered);
  first->stop();  // dies without acking

  auto second = started_client({t});
  ASSERT_NE(second, nullptr);
  Delivery again = must_next(*second);
  EXPECT_TRUE(again.redelivered);
  EXPECT_EQ(again.body, taken.body);
  EXPECT_EQ(again.correlation_id, "corr-d");
  EXPECT_TRUE(second->ack(again).ok());
}

TEST_F(BrokerClientTest, ReconnectsAfterBrokerRestartWithoutLosingAMessage) {
  run_reconnect_scenario(/*crash=*/false);
}

TEST_F(BrokerClientTest, ReconnectsAfterBrokerCrashWithoutLosingAMessage) {
  run_reconnect_scenario(/*crash=*/true);
}

TEST_F(BrokerClientTest, NextFailsOnceStopped) {
  auto client = started_client({topic("x")});
  ASSERT_NE(client, nullptr);
  client->stop();
  auto next = client->next(10ms);
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(client->publish(topic("x"), {{"a", 1}}, "c").code(), ErrorCode::kUnavailable);
}

TEST_F(BrokerClientTest, StartGivesUpOnAnUnreachableBroker) {
  BrokerOptions o = options();
  o.url = "amqp://guest:guest@127.0.0.1:1/";
  o.start_timeout = 1s;
  auto client = BrokerClient::create(o);
  ASSERT_TRUE(client.ok());
  auto begin = std::chrono::steady_clock::now();
  Status status = (*client)->start({topic("x")});
  EXPECT_EQ(status.code(), ErrorCode::kUnavailable) << status.to_string();
  EXPECT_LT(std::chrono::steady_clock::now() - begin, 10s);
}

}  // namespace
}  // namespace segmentor::messaging
