// Two failure modes of a fleet of `segmentor serve` replicas (issue 11), with the toy model
// test-bright-trap (tools/make_test_models.py) loaded by every replica: a mostly green image makes
// its forward raise, a mostly blue one makes it spin for a long time; anything else is segmented
// as test-bright does. No hook in the worker: the task really throws, the replica really dies.
#include "fleet_fixture.h"
#include "storage/delivery_log.h"

namespace segmentor::testing {
namespace {

using messaging::kImageSegmentationCompleted;
using messaging::kProductImageReady;
using messaging::kProductImagesMaskedBatch;

constexpr const char* kImageQueue = "queue.products.image.ready";
constexpr const char* kImageDlq = "queue.products.image.ready.dlq";

class FleetFaultsTest : public FleetTest {
 protected:
  void SetUp() override {
    FleetTest::SetUp();
    extra_env_["FOREGROUND_SEG_MODEL_NAME"] = "test-bright-trap";
    extra_env_["SHUTDOWN_GRACE_SECONDS"] = "2";
    // A job completes only when every asset is accounted for, so the counts below are exact.
    extra_env_["COMPLETION_THRESHOLD_PERCENTAGE"] = "100";
  }

  // Publishes a products.image.ready for a solid image of one colour (file and row included).
  void publish_solid(const std::string& job, const std::string& id, std::uint8_t r, std::uint8_t g,
                     std::uint8_t b) {
    const fs::path path = inputs() / (id + ".jpg");
    ASSERT_TRUE(fixtures::write_jpeg(path, fixtures::solid_image(64, 48, r, g, b)).ok());
    seed_image_row(id, path.string());
    ASSERT_TRUE(upstream_
                    ->publish(kProductImageReady, {{"job_id", job},
                                                   {"image_id", id},
                                                   {"product_id", "p"},
                                                   {"local_path", path.string()}})
                    .ok());
  }

  // Waits until no products.image.ready message is ready: every one is in a replica's hands.
  // (Publishes are confirmed, so a published message is in the queue before this looks.)
  static bool image_queue_drained(std::chrono::milliseconds timeout = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (queued(t(kProductImageReady)) == 0) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  // Every copy taken, for a failure message: one of 28 runs once took more than one copy (or
  // none) of a dead-letter expected once, and its log was not kept. Two copies fit a retry forked
  // between its republish and its ack, closed since (Note [Republish and ack commit together],
  // tests/messaging/broker_client_test.cpp reproduces it).
  static std::string describe(const std::vector<messaging::InboundDelivery>& dead) {
    std::string text = std::to_string(dead.size()) + " cop(ies) dead-lettered:\n";
    for (const auto& d : dead) {
      const messaging::HeaderValue* retries =
          messaging::find_header(d.headers, messaging::kRetryCountHeader);
      const auto* count = retries ? std::get_if<std::int64_t>(retries) : nullptr;
      text += "  x-retry-count " + (count ? std::to_string(*count) : std::string("-")) +
              ", redelivered " + (d.redelivered ? "yes" : "no") + ", " +
              header_text(d, messaging::kErrorTypeHeader) + ": " +
              header_text(d, messaging::kFailureReasonHeader).substr(0, 200) + "\n";
    }
    return text;
  }

  // Waits until replica `i`'s log holds `text`.
  bool log_shows(std::size_t i, const std::string& text, std::chrono::milliseconds timeout = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (replicas_[i]->log().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
};

// A task whose model raises (a real exception on the engine's slot thread, caught at the model's
// adapter): the model refused that input, which it would do again on any replica (Note [A model's
// raise is about its input], models/torch_mask_model.cpp), so the message is dead-lettered at
// once with the model's message, without retries; both replicas live on and the rest of the job
// is done.
TEST_F(FleetFaultsTest, ATaskThatThrowsIsDeadLetteredAndTheReplicasCarryOn) {
  for (std::size_t i = 0; i < 2; ++i) start_replica(i);
  const std::string job = unique_name("job-throws");
  const std::string poison = job + "-green";
  publish_image_batch(job, 3);
  const auto started = std::chrono::steady_clock::now();
  publish_solid(job, poison, 0, 255, 0);
  publish_image(job, job + "-before");

  auto dead = take_matching(kImageDlq, poison, 1, 30s);
  ASSERT_EQ(dead.size(), 1u) << describe(dead) << logs();
  // No retry: three would have taken 1 + 2 + 4 s (RetryPolicy's defaults) before the dead-letter.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 7s);
  const std::string reason = header_text(dead[0], messaging::kFailureReasonHeader);
  EXPECT_NE(reason.find("a green image"), std::string::npos) << reason;
  EXPECT_NE(reason.find("test-bright-trap"), std::string::npos) << reason;
  EXPECT_EQ(header_text(dead[0], messaging::kErrorTypeHeader), "ProcessingError");
  const messaging::HeaderValue* retries =
      messaging::find_header(dead[0].headers, messaging::kRetryCountHeader);
  ASSERT_NE(retries, nullptr);
  ASSERT_NE(std::get_if<std::int64_t>(retries), nullptr);
  EXPECT_EQ(std::get<std::int64_t>(*retries), 0);

  // Both replicas survived and still work: an image published after the dead-letter is done.
  for (auto& replica : replicas_) ASSERT_TRUE(replica->alive()) << logs();
  publish_image(job, job + "-after");
  ASSERT_TRUE(wait_for(t(kProductImagesMaskedBatch), job, 1, 30s)) << logs();
  const auto completed = events_->of(t(kImageSegmentationCompleted), job);
  ASSERT_EQ(completed.size(), 1u);
  EXPECT_EQ(completed[0].body["processed_assets"], 2);
  EXPECT_EQ(completed[0].body["failed_assets"], 1);
  EXPECT_EQ(progress_field(job, "image", "failed"), "1");
  EXPECT_TRUE(image_mask_row(job + "-after").has_value());
  EXPECT_FALSE(image_mask_row(poison).has_value());
  for (auto& replica : replicas_) EXPECT_EQ(replica->terminate(), 0) << logs();
}

// A message whose task never ends before its worker dies (kill -9 each time, as an OOM killer
// would): each redelivery is counted in PostgreSQL (DeliveryLog), and the replica that receives
// it after the limit (2 redeliveries by default) dead-letters it unread, naming the count.
TEST_F(FleetFaultsTest, AMessageThatKeepsComingBackIsDeadLetteredAfterItsRedeliveries) {
  start_replica(0);
  ASSERT_TRUE(image_queue_drained()) << "leftovers of earlier tests";
  const std::string job = unique_name("job-comes-back");
  const std::string poison = job + "-blue";
  publish_image_batch(job, 2);
  publish_solid(job, poison, 0, 0, 255);
  ASSERT_TRUE(image_queue_drained()) << logs();  // replica 0 holds it, spinning
  start_replica(1);

  // Kill whoever holds it; the other replica (or a fresh one) receives it next.
  replicas_[0]->kill_now();
  ASSERT_TRUE(log_shows(1, "redelivered (1 of at most 2 times)")) << logs();
  start_replica(0);
  replicas_[1]->kill_now();
  ASSERT_TRUE(log_shows(0, "redelivered (2 of at most 2 times)")) << logs();
  start_replica(1);
  const auto third = std::chrono::steady_clock::now();
  replicas_[0]->kill_now();

  auto dead = take_matching(kImageDlq, poison, 1, 20s);
  ASSERT_EQ(dead.size(), 1u) << describe(dead) << logs();
  EXPECT_LT(std::chrono::steady_clock::now() - third, 10s);
  EXPECT_EQ(header_text(dead[0], messaging::kErrorTypeHeader), "RedeliveredTooOften");
  const std::string reason = header_text(dead[0], messaging::kFailureReasonHeader);
  EXPECT_NE(reason.find("redelivered 3 times"), std::string::npos) << reason;
  EXPECT_NE(replicas_[1]->log().find("dead-lettering a products.image.ready message: "
                                     "redelivered 3 times"),
            std::string::npos)
      << logs();
  // Counted in the shared table, under the fingerprint every replica computes.
  EXPECT_EQ(sql("SELECT deliveries FROM segmentor_redeliveries WHERE fingerprint = " +
                sql_literal(delivery_fingerprint(kImageQueue, dead[0].body))),
            "3");

  // The replica that dead-lettered it carries on: the rest of the job is done, the poison is
  // counted as failed.
  ASSERT_TRUE(replicas_[1]->alive()) << logs();
  publish_image(job, job + "-after");
  ASSERT_TRUE(wait_for(t(kProductImagesMaskedBatch), job, 1, 30s)) << logs();
  const auto completed = events_->of(t(kImageSegmentationCompleted), job);
  ASSERT_EQ(completed.size(), 1u);
  EXPECT_EQ(completed[0].body["processed_assets"], 1);
  EXPECT_EQ(completed[0].body["failed_assets"], 1);
  EXPECT_FALSE(image_mask_row(poison).has_value());
  EXPECT_EQ(replicas_[1]->terminate(), 0) << logs();
}

}  // namespace
}  // namespace segmentor::testing
