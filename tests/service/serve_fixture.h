// The fixture of the `segmentor serve` end-to-end tests: a scratch input and data folder, the
// worker's environment (test models on the CPU), upstream rows and events, and checks on masks.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "../storage/postgres_environment.h"
#include "../storage/test_database.h"
#include "imaging/decode.h"
#include "messaging/events.h"
#include "serve_harness.h"
#include "support/image_fixtures.h"
#include "support/temp_dir.h"

namespace segmentor::testing {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(shared_broker(), nullptr) << "rabbitmq-server is not installed";
    fs::create_directories(inputs());
    fs::create_directories(data());
    auto collector = EventCollector::create(shared_broker()->url());
    ASSERT_TRUE(collector.ok()) << collector.status().to_string();
    events_ = std::move(collector).value();
    auto publisher = UpstreamPublisher::create(shared_broker()->url());
    ASSERT_TRUE(publisher.ok()) << publisher.status().to_string();
    upstream_ = std::move(publisher).value();
  }

  fs::path inputs() const { return dir_ / "inputs"; }
  fs::path data() const { return dir_ / "data"; }

  std::map<std::string, std::string> worker_env() const {
    std::map<std::string, std::string> env = extra_env_;
    env.insert({{"BUS_BROKER", shared_broker()->url()},
                {"POSTGRES_DSN", TestPostgres::instance().dsn()},
                {"DATA_ROOT_CONTAINER", data().string()},
                {"INPUT_ROOTS", inputs().string()},
                {"MODEL_CACHE", SEGMENTOR_TEST_MODELS_DIR},
                {"FOREGROUND_SEG_MODEL_NAME", "test-bright"},
                {"PEOPLE_SEG_MODEL_NAME", "test-person-prob"},
                {"PEOPLE_DETECTOR_MODEL_NAME", "none"},
                {"DEVICE", "cpu"},
                {"CPU_THREADS", "1"},
                {"MAX_CONCURRENT_BATCHES", "4"},
                {"METRICS_PORT", std::to_string(metrics_port_)},
                {"SHUTDOWN_GRACE_SECONDS", "20"},
                {"LOG_FORMAT", "text"},
                {"LOG_LEVEL", "INFO"}});
    return env;
  }

  // Starts a worker process (a second call starts another one, e.g. after a SIGTERM).
  WorkerProcess& start_worker() {
    worker_ = std::make_unique<WorkerProcess>(worker_env(), dir_ / "worker.log");
    EXPECT_TRUE(worker_->start());
    return *worker_;
  }

  // A JPEG in the input folder: red rectangle (the test model's foreground) on black.
  std::string image(const std::string& name) {
    const fs::path path = inputs() / (name + ".jpg");
    EXPECT_TRUE(
        fixtures::write_jpeg(path, fixtures::red_rectangle_on_black(64, 48, 16, 8, 40, 32)).ok());
    return path.string();
  }

  static void seed_image_row(const std::string& img_id, const std::string& path) {
    sql("INSERT INTO product_images (img_id, product_id, local_path) VALUES (" +
        sql_literal(img_id) + ", 'p', " + sql_literal(path) + ") ON CONFLICT DO NOTHING");
  }
  static void seed_frame_row(const std::string& frame_id, const std::string& video_id, double ts,
                             const std::string& path) {
    sql("INSERT INTO video_frames (frame_id, video_id, ts, local_path) VALUES (" +
        sql_literal(frame_id) + ", " + sql_literal(video_id) + ", " + std::to_string(ts) + ", " +
        sql_literal(path) + ") ON CONFLICT DO NOTHING");
  }
  static std::optional<std::string> image_mask_row(const std::string& img_id) {
    return sql("SELECT masked_local_path FROM product_images WHERE img_id = " +
               sql_literal(img_id));
  }
  static std::optional<std::string> frame_mask_row(const std::string& frame_id) {
    return sql("SELECT masked_local_path FROM video_frames WHERE frame_id = " +
               sql_literal(frame_id));
  }
  static std::optional<std::string> progress_field(const std::string& job_id,
                                                   const std::string& type,
                                                   const std::string& column) {
    return sql("SELECT " + column + " FROM segmentor_job_progress WHERE job_id = " +
               sql_literal(job_id) + " AND asset_type = " + sql_literal(type));
  }

  // Publishes one products.image.ready (image file and upstream row included).
  void publish_image(const std::string& job_id, const std::string& image_id,
                     const std::string& correlation_id = "") {
    const std::string path = image(image_id);
    seed_image_row(image_id, path);
    ASSERT_TRUE(upstream_
                    ->publish(messaging::kProductImageReady,
                              {{"product_id", "p-" + image_id},
                               {"image_id", image_id},
                               {"local_path", path},
                               {"job_id", job_id}},
                              correlation_id)
                    .ok());
  }
  void publish_image_batch(const std::string& job_id, std::int64_t total,
                           const std::string& event_id = "") {
    ASSERT_TRUE(upstream_
                    ->publish(messaging::kProductImagesReadyBatch,
                              {{"job_id", job_id},
                               {"event_id", event_id.empty() ? job_id + "-batch" : event_id},
                               {"total_images", total}})
                    .ok());
  }
  // Publishes a videos.keyframes.ready with `frames` frames: ids <video>-f<i>, ts = i / 2.
  void publish_video(const std::string& job_id, const std::string& video_id, int frames) {
    nlohmann::json list = nlohmann::json::array();
    for (int i = 0; i < frames; ++i) {
      const std::string frame_id = video_id + "-f" + std::to_string(i);
      const std::string path = image(frame_id);
      seed_frame_row(frame_id, video_id, i / 2.0, path);
      list.push_back({{"frame_id", frame_id}, {"ts", i / 2.0}, {"local_path", path}});
    }
    ASSERT_TRUE(upstream_
                    ->publish(messaging::kVideoKeyframesReady,
                              {{"video_id", video_id}, {"job_id", job_id}, {"frames", list}})
                    .ok());
  }
  void publish_video_batch(const std::string& job_id, std::int64_t total) {
    ASSERT_TRUE(
        upstream_
            ->publish(messaging::kVideoKeyframesReadyBatch, {{"job_id", job_id},
                                                             {"event_id", job_id + "-vbatch"},
                                                             {"total_keyframes", total},
                                                             {"videos", nlohmann::json::array()}})
            .ok());
  }

  // Waits until `topic` has at least `count` events for `job_id`.
  bool wait_for(const std::string& topic, const std::string& job_id, std::size_t count,
                std::chrono::milliseconds timeout = 60s) {
    return events_->wait_until(
        [&](const std::vector<Emitted>&) { return events_->of(topic, job_id).size() >= count; },
        timeout);
  }
  // Collects whatever else arrives in `for_how_long` (to prove something was not sent).
  void settle(std::chrono::milliseconds for_how_long) {
    events_->wait_until([](const std::vector<Emitted>&) { return false; }, for_how_long);
  }

  // The mask is a 0/255 PNG with the source's size, 255 exactly on the red rectangle.
  static void expect_product_mask(const std::string& path) {
    auto mask = decode_image_file(path);
    ASSERT_TRUE(mask.ok()) << path << ": " << mask.status().to_string();
    EXPECT_EQ(mask->width, 64);
    EXPECT_EQ(mask->height, 48);
    EXPECT_EQ(fixtures::pixel_at(*mask, 28, 20)[0], 255) << path;
    EXPECT_EQ(fixtures::pixel_at(*mask, 2, 2)[0], 0) << path;
    for (std::uint8_t v : mask->pixels) ASSERT_TRUE(v == 0 || v == 255) << path;
  }

  static std::string metadata_time(const Emitted& e) {
    return e.body["_metadata"]["timestamp"].get<std::string>();
  }

  fixtures::TempDir dir_{"segmentor-serve"};
  int metrics_port_ = 0;
  std::map<std::string, std::string> extra_env_;  // wins over the defaults above
  std::unique_ptr<EventCollector> events_;
  std::unique_ptr<UpstreamPublisher> upstream_;
  std::unique_ptr<WorkerProcess> worker_;
};

}  // namespace segmentor::testing
