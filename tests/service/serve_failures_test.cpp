// `segmentor serve` end to end, when things go wrong: malformed and unsafe messages, a missing
// file, a database outage, a broker restart and a SIGTERM in the middle of a job.

#include "messaging/wire_format.h"
#include "serve_fixture.h"
#include "support/loopback_http.h"

namespace segmentor::testing {
namespace {

using messaging::kImageSegmentationCompleted;
using messaging::kProductImageMasked;
using messaging::kProductImageReady;
using messaging::kProductImagesMaskedBatch;

std::string t(std::string_view topic) { return std::string(topic); }

std::string header_text(const messaging::InboundDelivery& d, std::string_view key) {
  const messaging::HeaderValue* value = messaging::find_header(d.headers, key);
  if (value == nullptr) return "";
  if (const auto* text = std::get_if<std::string>(value)) return *text;
  return "<not a string>";
}

TEST_F(ServeTest, MalformedEventsAreDeadLetteredWithTheReason) {
  start_worker();
  const std::string marker = unique_name("job-malformed");
  ASSERT_TRUE(upstream_->publish_raw(kProductImageReady, "{not json " + marker).ok());
  ASSERT_TRUE(
      upstream_
          ->publish(kProductImageReady, {{"job_id", marker}, {"image_id", 5}, {"product_id", "p"}})
          .ok());
  ASSERT_TRUE(upstream_->publish(messaging::kProductImagesReadyBatch, {{"job_id", marker}}).ok());
  auto dead = take_matching("queue.products.image.ready.dlq", marker, 2, 30s);
  ASSERT_EQ(dead.size(), 2u) << worker_->log();
  for (const auto& d : dead) {
    EXPECT_EQ(header_text(d, messaging::kErrorTypeHeader), "MalformedMessage");
    EXPECT_EQ(header_text(d, messaging::kOriginalTopicHeader), t(kProductImageReady));
    EXPECT_FALSE(header_text(d, messaging::kFailureReasonHeader).empty());
  }
  auto dead_batch = take_matching("queue.products.images.ready.batch.dlq", marker, 1, 30s);
  ASSERT_EQ(dead_batch.size(), 1u);
  EXPECT_NE(header_text(dead_batch[0], messaging::kFailureReasonHeader).find("event_id"),
            std::string::npos);
}

TEST_F(ServeTest, UnsafeInputsAreDeadLetteredNeverFollowed) {
  start_worker();
  const std::string job = unique_name("job-unsafe");
  const fs::path outside = dir_ / "outside" / "secret.jpg";
  ASSERT_TRUE(
      fixtures::write_jpeg(outside, fixtures::red_rectangle_on_black(64, 48, 16, 8, 40, 32)).ok());
  fs::create_symlink(outside, inputs() / "link.jpg");
  publish_image_batch(job, 3);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {job + "-abs", outside.string()},                   // outside the roots
      {job + "-link", (inputs() / "link.jpg").string()},  // a symlink leading outside
      {"../" + job + "-escape", image(job + "-ok")},      // an id that is not a plain file name
  };
  for (const auto& [id, path] : cases) {
    ASSERT_TRUE(
        upstream_
            ->publish(
                kProductImageReady,
                {{"job_id", job}, {"image_id", id}, {"product_id", "p"}, {"local_path", path}})
            .ok());
  }
  auto dead = take_matching("queue.products.image.ready.dlq", job, 3, 30s);
  ASSERT_EQ(dead.size(), 3u) << worker_->log();
  for (const auto& d : dead) {
    EXPECT_EQ(header_text(d, messaging::kErrorTypeHeader), "InvalidInput");
    EXPECT_FALSE(header_text(d, messaging::kFailureReasonHeader).empty());
  }
  // Every asset accounted for (as failed): the job completes with nothing masked.
  ASSERT_TRUE(wait_for(t(kProductImagesMaskedBatch), job, 1)) << worker_->log();
  EXPECT_EQ(events_->of(t(kProductImagesMaskedBatch), job)[0].body["total_images"], 0);
  EXPECT_EQ(events_->of(t(kImageSegmentationCompleted), job)[0].body["failed_assets"], 3);
  EXPECT_TRUE(events_->of(t(kProductImageMasked), job).empty());
  EXPECT_FALSE(fs::exists(data() / "masks_product" / "product_images" / (job + "-abs.png")));
  EXPECT_FALSE(fs::exists(data() / "masks_product" / (job + "-escape.png")));
}

TEST_F(ServeTest, MissingFileIsDeadLetteredAndCountedAsFailed) {
  start_worker();
  const std::string job = unique_name("job-missing");
  publish_image_batch(job, 2);
  publish_image(job, job + "-ok");
  ASSERT_TRUE(upstream_
                  ->publish(kProductImageReady, {{"job_id", job},
                                                 {"image_id", job + "-gone"},
                                                 {"product_id", "p"},
                                                 {"local_path", (inputs() / "gone.jpg").string()}})
                  .ok());
  auto dead = take_matching("queue.products.image.ready.dlq", job, 1, 30s);
  ASSERT_EQ(dead.size(), 1u) << worker_->log();
  EXPECT_NE(header_text(dead[0], messaging::kFailureReasonHeader).find("gone.jpg"),
            std::string::npos);
  ASSERT_TRUE(wait_for(t(kProductImagesMaskedBatch), job, 1)) << worker_->log();
  const auto completed = events_->of(t(kImageSegmentationCompleted), job);
  ASSERT_EQ(completed.size(), 1u);
  EXPECT_EQ(completed[0].body["processed_assets"], 1);
  EXPECT_EQ(completed[0].body["failed_assets"], 1);
  EXPECT_EQ(completed[0].body["has_partial_completion"], true);
  EXPECT_EQ(events_->of(t(kProductImagesMaskedBatch), job)[0].body["total_images"], 1);
}

TEST_F(ServeTest, DatabaseOutageLosesNothing) {
  start_worker();
  const std::string job = unique_name("job-db-outage");
  std::vector<std::pair<std::string, std::string>> assets;
  for (int i = 0; i < 3; ++i) {
    const std::string id = job + "-img" + std::to_string(i);
    assets.emplace_back(id, image(id));
    seed_image_row(id, assets.back().second);
  }
  ASSERT_TRUE(TestPostgres::instance().pause());
  for (const auto& [id, path] : assets) {
    ASSERT_TRUE(
        upstream_
            ->publish(
                kProductImageReady,
                {{"job_id", job}, {"image_id", id}, {"product_id", "p"}, {"local_path", path}})
            .ok());
  }
  publish_image_batch(job, 3);
  settle(4s);
  // The row comes before the event: nothing announced while the database is away.
  EXPECT_TRUE(events_->of(t(kProductImageMasked), job).empty());
  ASSERT_TRUE(TestPostgres::instance().resume());
  ASSERT_TRUE(wait_for(t(kProductImagesMaskedBatch), job, 1, 90s)) << worker_->log();
  EXPECT_EQ(events_->of(t(kProductImagesMaskedBatch), job)[0].body["total_images"], 3);
  for (const auto& [id, path] : assets) EXPECT_TRUE(image_mask_row(id).has_value()) << id;
  EXPECT_EQ(progress_field(job, "image", "done"), "3");
  EXPECT_EQ(take_matching("queue.products.image.ready.dlq", job, 1, 1s).size(), 0u);
}

TEST_F(ServeTest, BrokerRestartMidJob) {
  extra_env_["COMPLETION_THRESHOLD_PERCENTAGE"] = "100";
  start_worker();
  const std::string job = unique_name("job-broker-restart");
  publish_image_batch(job, 6);
  for (int i = 0; i < 6; ++i) publish_image(job, job + "-img" + std::to_string(i));
  ASSERT_TRUE(wait_for(t(kProductImageMasked), job, 1)) << worker_->log();
  ASSERT_TRUE(shared_broker()->restart().ok());
  // The collector's queues are durable and the events persistent: a new connection sees them.
  auto collector = EventCollector::create(shared_broker()->url());
  ASSERT_TRUE(collector.ok()) << collector.status().to_string();
  events_ = std::move(collector).value();
  ASSERT_TRUE(wait_for(t(kProductImagesMaskedBatch), job, 1, 120s)) << worker_->log();
  EXPECT_EQ(events_->of(t(kProductImagesMaskedBatch), job)[0].body["total_images"], 6);
  EXPECT_EQ(progress_field(job, "image", "done"), "6");
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(image_mask_row(job + "-img" + std::to_string(i)).has_value());
  }
  EXPECT_EQ(worker_->terminate(), 0) << worker_->log();
}

TEST_F(ServeTest, SigtermMidJobThenRestartFinishesIt) {
  // 100 %: the job completes only when every image is counted, so a double count would show.
  extra_env_["COMPLETION_THRESHOLD_PERCENTAGE"] = "100";
  start_worker();
  const std::string job = unique_name("job-sigterm");
  constexpr int kImages = 30;
  publish_image_batch(job, kImages);
  for (int i = 0; i < kImages; ++i) publish_image(job, job + "-img" + std::to_string(i));
  ASSERT_TRUE(wait_for(t(kProductImageMasked), job, 2)) << worker_->log();
  EXPECT_EQ(worker_->terminate(), 0) << worker_->log();
  EXPECT_NE(worker_->log().find("worker stopped"), std::string::npos);
  start_worker();
  ASSERT_TRUE(wait_for(t(kProductImagesMaskedBatch), job, 1, 120s)) << worker_->log();
  const auto completed = events_->of(t(kImageSegmentationCompleted), job);
  ASSERT_EQ(completed.size(), 1u);
  EXPECT_EQ(completed[0].body["processed_assets"], kImages);
  EXPECT_EQ(completed[0].body["failed_assets"], 0);
  EXPECT_EQ(progress_field(job, "image", "done"), std::to_string(kImages));
  EXPECT_EQ(worker_->terminate(), 0) << worker_->log();
}

using fixtures::http_get;

int free_port() { return fixtures::free_loopback_port(); }

TEST_F(ServeTest, HealthReadinessAndMetrics) {
  metrics_port_ = free_port();
  start_worker();
  const std::string job = unique_name("job-metrics");
  publish_image(job, job + "-a");
  ASSERT_TRUE(wait_for(t(kProductImageMasked), job, 1)) << worker_->log();
  EXPECT_NE(http_get(metrics_port_, "/healthz").find(" 200"), std::string::npos);
  EXPECT_NE(http_get(metrics_port_, "/readyz").find(" 200"), std::string::npos);
  // The ack (and its count) follows the event by a moment.
  std::string metrics;
  for (int i = 0; i < 50 && metrics.find("products.image.ready") == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
    metrics = http_get(metrics_port_, "/metrics");
  }
  EXPECT_NE(
      metrics.find("segmentor_messages_total{outcome=\"acked\",topic=\"products.image.ready\"} 1"),
      std::string::npos)
      << metrics;
  const std::string second = job + "-b";
  const std::string second_path = image(second);
  seed_image_row(second, second_path);
  ASSERT_TRUE(TestPostgres::instance().pause());
  // The next database use finds it gone; readiness follows.
  ASSERT_TRUE(upstream_
                  ->publish(kProductImageReady, {{"job_id", job},
                                                 {"image_id", second},
                                                 {"product_id", "p"},
                                                 {"local_path", second_path}})
                  .ok());
  bool unready = false;
  for (int i = 0; i < 100 && !unready; ++i) {
    unready = http_get(metrics_port_, "/readyz").find(" 503") != std::string::npos;
    if (!unready) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(TestPostgres::instance().resume());
  EXPECT_TRUE(unready) << worker_->log();
  ASSERT_TRUE(wait_for(t(kProductImageMasked), job, 2, 90s)) << worker_->log();
}

}  // namespace
}  // namespace segmentor::testing
