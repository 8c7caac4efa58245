// The acceptance run: a 200-image + 20-video job through `segmentor serve` on the CPU
// with the test models, every asset masked, recorded and announced exactly as CONTRACT §3 says.
#include <chrono>
#include <cstdio>

#include "serve_fixture.h"

namespace segmentor::testing {
namespace {

TEST_F(ServeTest, TwoHundredImagesAndTwentyVideos) {
  constexpr int kImages = 200;
  constexpr int kVideos = 20;
  constexpr int kFramesPerVideo = 5;
  start_worker();
  const std::string job = unique_name("job-large");
  const auto start = std::chrono::steady_clock::now();
  for (int v = 0; v < kVideos; ++v)
    publish_video(job, job + "-v" + std::to_string(v), kFramesPerVideo);
  for (int i = 0; i < kImages; ++i) publish_image(job, job + "-img" + std::to_string(i));
  publish_image_batch(job, kImages);
  publish_video_batch(job, kVideos * kFramesPerVideo);
  const std::string images_batch(messaging::kProductImagesMaskedBatch);
  const std::string videos_batch(messaging::kVideoKeyframesMaskedBatch);
  ASSERT_TRUE(events_->wait_until(
      [&](const std::vector<Emitted>&) {
        return !events_->of(images_batch, job).empty() && !events_->of(videos_batch, job).empty() &&
               events_->of(std::string(messaging::kProductImageMasked), job).size() >= kImages &&
               events_->of(std::string(messaging::kVideoKeyframesMasked), job).size() >= kVideos;
      },
      std::chrono::minutes(8)))
      << worker_->log();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("200 images + 20 videos x 5 frames in %.1f s\n", seconds);
  settle(std::chrono::milliseconds(500));
  // The 90 % threshold may complete a job before its last assets: the batch total says how many
  // were masked then, and every one of those was announced before it.
  const auto image_total = events_->of(images_batch, job)[0].body["total_images"].get<int>();
  const auto frame_total = events_->of(videos_batch, job)[0].body["total_keyframes"].get<int>();
  EXPECT_GE(image_total, kImages * 9 / 10);
  EXPECT_GE(frame_total, kVideos * kFramesPerVideo * 9 / 10);
  EXPECT_EQ(events_->of(std::string(messaging::kProductImageMasked), job).size(),
            static_cast<std::size_t>(kImages));
  EXPECT_EQ(events_->of(std::string(messaging::kVideoKeyframesMasked), job).size(),
            static_cast<std::size_t>(kVideos));
  EXPECT_EQ(progress_field(job, "image", "done"), std::to_string(image_total));
  EXPECT_EQ(sql("SELECT count(*) FROM product_images WHERE img_id LIKE " +
                sql_literal(job + "-img%") + " AND masked_local_path IS NOT NULL"),
            std::to_string(kImages));
  EXPECT_EQ(sql("SELECT count(*) FROM video_frames WHERE video_id LIKE " +
                sql_literal(job + "-v%") + " AND masked_local_path IS NOT NULL"),
            std::to_string(kVideos * kFramesPerVideo));
  EXPECT_EQ(worker_->terminate(), 0) << worker_->log();
}

}  // namespace
}  // namespace segmentor::testing
