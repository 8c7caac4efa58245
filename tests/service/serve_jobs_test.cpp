// `segmentor serve` end to end, the happy paths of CONTRACT §2–§6: product and video jobs in
// either order, zero-asset jobs, redelivered assets and duplicate .batch events.
#include "serve_fixture.h"

namespace segmentor::testing {
namespace {

using messaging::kImageSegmentationCompleted;
using messaging::kProductImageMasked;
using messaging::kProductImagesMaskedBatch;
using messaging::kVideoKeyframesMasked;
using messaging::kVideoKeyframesMaskedBatch;
using messaging::kVideoSegmentationCompleted;

std::string t(std::string_view topic) { return std::string(topic); }

TEST_F(ServeTest, ProductJobImagesThenBatch) {
  start_worker();
  const std::string job = unique_name("job-images-first");
  for (int i = 0; i < 4; ++i) {
    const std::string id = job + "-img" + std::to_string(i);
    publish_image(job, id, "corr-" + id);
  }
  ASSERT_TRUE(wait_for(t(kProductImageMasked), job, 4)) << worker_->log();
  publish_image_batch(job, 4);
  ASSERT_TRUE(wait_for(t(kProductImagesMaskedBatch), job, 1)) << worker_->log();
  settle(500ms);

  const auto masked = events_->of(t(kProductImageMasked), job);
  ASSERT_EQ(masked.size(), 4u);
  for (const Emitted& e : masked) {
    const std::string id = e.body["image_id"];
    const std::string path = e.body["mask_path"];
    EXPECT_EQ(e.correlation_id, "corr-" + id);  // propagated (CONTRACT §1 FIX)
    EXPECT_EQ(e.body["_metadata"]["correlation_id"], "corr-" + id);
    EXPECT_EQ(path, (data() / "masks_product" / "product_images" / (id + ".png")).string());
    EXPECT_EQ(image_mask_row(id), path);
    expect_product_mask(path);
    EXPECT_TRUE(fs::exists(data() / "masks_foreground" / "product_images" / (id + ".png")));
    // No green (the test people model's "person") in the image: no people mask is written.
    EXPECT_FALSE(fs::exists(data() / "masks_people" / "product_images" / (id + ".png")));
  }
  const auto completed = events_->of(t(kImageSegmentationCompleted), job);
  const auto batch = events_->of(t(kProductImagesMaskedBatch), job);
  ASSERT_EQ(completed.size(), 1u);
  ASSERT_EQ(batch.size(), 1u);
  EXPECT_EQ(batch[0].body["total_images"], 4);
  EXPECT_EQ(completed[0].body["total_assets"], 4);
  EXPECT_EQ(completed[0].body["processed_assets"], 4);
  EXPECT_EQ(completed[0].body["failed_assets"], 0);
  EXPECT_EQ(completed[0].body["has_partial_completion"], false);
  EXPECT_EQ(completed[0].body["idempotent"], true);
  EXPECT_LE(metadata_time(completed[0]), metadata_time(batch[0]));
  for (const Emitted& e : masked) EXPECT_LE(metadata_time(e), metadata_time(batch[0]));
  EXPECT_EQ(worker_->terminate(), 0) << worker_->log();
}

TEST_F(ServeTest, ProductJobBatchFirst) {
  start_worker();
  const std::string job = unique_name("job-batch-first");
  publish_image_batch(job, 3);
  settle(500ms);
  EXPECT_TRUE(events_->of(t(kProductImagesMaskedBatch), job).empty());  // expected known, 0 done
  for (int i = 0; i < 3; ++i) publish_image(job, job + "-img" + std::to_string(i));
  ASSERT_TRUE(wait_for(t(kProductImagesMaskedBatch), job, 1)) << worker_->log();
  const auto masked = events_->of(t(kProductImageMasked), job);
  const auto batch = events_->of(t(kProductImagesMaskedBatch), job);
  EXPECT_EQ(masked.size(), 3u);
  EXPECT_EQ(batch[0].body["total_images"], 3);
  for (const Emitted& e : masked) EXPECT_LE(metadata_time(e), metadata_time(batch[0]));
  EXPECT_EQ(progress_field(job, "image", "done"), "3");
}

TEST_F(ServeTest, VideoJob) {
  start_worker();
  const std::string job = unique_name("job-video");
  publish_video_batch(job, 5);
  publish_video(job, job + "-v0", 3);
  publish_video(job, job + "-v1", 2);
  ASSERT_TRUE(wait_for(t(kVideoKeyframesMaskedBatch), job, 1)) << worker_->log();
  settle(300ms);
  const auto masked = events_->of(t(kVideoKeyframesMasked), job);
  ASSERT_EQ(masked.size(), 2u);
  for (const Emitted& e : masked) {
    const std::string video = e.body["video_id"];
    const auto& frames = e.body["frames"];
    ASSERT_EQ(frames.size(), video == job + "-v0" ? 3u : 2u);
    for (std::size_t i = 0; i < frames.size(); ++i) {
      const std::string frame_id = frames[i]["frame_id"];
      EXPECT_EQ(frame_id, video + "-f" + std::to_string(i));  // input order
      EXPECT_DOUBLE_EQ(frames[i]["ts"].get<double>(), static_cast<double>(i) / 2.0);
      const std::string path = frames[i]["mask_path"];
      EXPECT_EQ(path, (data() / "masks_product" / "video_frames" / (frame_id + ".png")).string());
      EXPECT_EQ(frame_mask_row(frame_id), path);
      expect_product_mask(path);
    }
  }
  const auto completed = events_->of(t(kVideoSegmentationCompleted), job);
  const auto batch = events_->of(t(kVideoKeyframesMaskedBatch), job);
  ASSERT_EQ(completed.size(), 1u);
  EXPECT_EQ(completed[0].body["processed_assets"], 5);
  EXPECT_EQ(batch[0].body["total_keyframes"], 5);
}

TEST_F(ServeTest, ZeroAssetJob) {
  start_worker();
  const std::string job = unique_name("job-zero");
  publish_image_batch(job, 0);
  publish_video_batch(job, 0);
  ASSERT_TRUE(wait_for(t(kProductImagesMaskedBatch), job, 1)) << worker_->log();
  ASSERT_TRUE(wait_for(t(kVideoKeyframesMaskedBatch), job, 1)) << worker_->log();
  settle(1s);
  EXPECT_EQ(events_->of(t(kProductImagesMaskedBatch), job)[0].body["total_images"], 0);
  EXPECT_EQ(events_->of(t(kVideoKeyframesMaskedBatch), job)[0].body["total_keyframes"], 0);
  // CONTRACT §3: no segmentation.completed on the zero-asset path.
  EXPECT_TRUE(events_->of(t(kImageSegmentationCompleted), job).empty());
  EXPECT_TRUE(events_->of(t(kVideoSegmentationCompleted), job).empty());
}

TEST_F(ServeTest, RedeliveredAssetIsCountedOnce) {
  start_worker();
  const std::string job = unique_name("job-redelivered");
  publish_image_batch(job, 3);
  publish_image(job, job + "-a");
  publish_image(job, job + "-a");  // the same asset again (a redelivery, as upstream sees it)
  publish_image(job, job + "-b");
  ASSERT_TRUE(wait_for(t(kProductImageMasked), job, 3)) << worker_->log();
  settle(1s);
  // Two distinct assets of three: 67 %, below the 90 % threshold. Counted twice, it would be done.
  EXPECT_TRUE(events_->of(t(kProductImagesMaskedBatch), job).empty());
  EXPECT_EQ(progress_field(job, "image", "done"), "2");
  publish_image(job, job + "-c");
  ASSERT_TRUE(wait_for(t(kProductImagesMaskedBatch), job, 1)) << worker_->log();
  EXPECT_EQ(events_->of(t(kProductImagesMaskedBatch), job)[0].body["total_images"], 3);
  EXPECT_EQ(events_->of(t(kImageSegmentationCompleted), job)[0].body["processed_assets"], 3);
}

TEST_F(ServeTest, DuplicateBatchEventIsIgnored) {
  start_worker();
  const std::string job = unique_name("job-dup-batch");
  publish_image_batch(job, 2, job + "-event");
  publish_image_batch(job, 2, job + "-event");
  publish_image(job, job + "-a");
  publish_image(job, job + "-b");
  ASSERT_TRUE(wait_for(t(kProductImagesMaskedBatch), job, 1)) << worker_->log();
  publish_image_batch(job, 2, job + "-event");  // after completion too
  settle(1500ms);
  EXPECT_EQ(events_->of(t(kProductImagesMaskedBatch), job).size(), 1u);
  EXPECT_EQ(events_->of(t(kImageSegmentationCompleted), job).size(), 1u);
}

}  // namespace
}  // namespace segmentor::testing
