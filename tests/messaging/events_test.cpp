#include "messaging/events.h"

#include <gtest/gtest.h>

namespace segmentor::messaging {
namespace {

using nlohmann::json;

TEST(Events, ParsesProductImageReadyWithExtraFields) {
  json event = {{"product_id", "p1"}, {"image_id", "i1"}, {"local_path", "/app/data/i1.jpg"},
                {"job_id", "j1"}, {"metadata", {{"width", 400}, {"height", 300}, {"format", "jpeg"}}},
                {"unexpected", 42}};
  auto parsed = parse_product_image_ready(event);
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  EXPECT_EQ(parsed->product_id, "p1");
  EXPECT_EQ(parsed->image_id, "i1");
  EXPECT_EQ(parsed->local_path, "/app/data/i1.jpg");
  EXPECT_EQ(parsed->job_id, "j1");
  ASSERT_TRUE(parsed->metadata.has_value());
  EXPECT_EQ(parsed->metadata->width, 400);
  EXPECT_EQ(parsed->metadata->height, 300);
  EXPECT_EQ(parsed->metadata->format, "jpeg");
}

TEST(Events, ProductImageReadyErrorsNameTheField) {
  json event = {{"product_id", "p1"}, {"image_id", 7}, {"local_path", "/x"}, {"job_id", "j"}};
  auto parsed = parse_product_image_ready(event);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parsed.status().message(), "image_id: expected a string");

  event["image_id"] = "i";
  event.erase("job_id");
  EXPECT_EQ(parse_product_image_ready(event).status().message(), "job_id: missing");

  event["job_id"] = "j";
  event["metadata"] = {{"width", "wide"}};
  EXPECT_EQ(parse_product_image_ready(event).status().message(),
            "metadata.width: expected an integer");
  event["metadata"] = nullptr;
  EXPECT_TRUE(parse_product_image_ready(event).ok());
  EXPECT_FALSE(parse_product_image_ready(json::array()).ok());
}

TEST(Events, ParsesKeyframesInOrder) {
  json event = {{"video_id", "v1"}, {"job_id", "j1"},
                {"frames", {{{"frame_id", "f0"}, {"ts", 0.5}, {"local_path", "/a"}},
                            {{"frame_id", "f1"}, {"ts", 2}, {"local_path", "/b"}}}}};
  auto parsed = parse_video_keyframes_ready(event);
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  ASSERT_EQ(parsed->frames.size(), 2u);
  EXPECT_EQ(parsed->frames[0].frame_id, "f0");
  EXPECT_DOUBLE_EQ(parsed->frames[0].ts, 0.5);
  EXPECT_DOUBLE_EQ(parsed->frames[1].ts, 2.0);
  EXPECT_EQ(parsed->frames[1].local_path, "/b");
}

TEST(Events, KeyframeErrorsNameTheFrame) {
  json event = {{"video_id", "v1"}, {"job_id", "j1"},
                {"frames", {{{"frame_id", "f0"}, {"ts", 0.5}, {"local_path", "/a"}},
                            {{"frame_id", "f1"}, {"ts", 1.0}, {"local_path", "/b"}},
                            {{"frame_id", "f2"}, {"ts", "late"}, {"local_path", "/c"}}}}};
  EXPECT_EQ(parse_video_keyframes_ready(event).status().message(), "frames[2].ts: expected a number");
  event["frames"][2] = "f2";
  EXPECT_EQ(parse_video_keyframes_ready(event).status().message(), "frames[2]: expected an object");
  event["frames"] = "none";
  EXPECT_EQ(parse_video_keyframes_ready(event).status().message(), "frames: expected an array");
  event.erase("frames");
  EXPECT_EQ(parse_video_keyframes_ready(event).status().message(), "frames: missing");
}

TEST(Events, ParsesBatchesAndIgnoresTheVideosArray) {
  json images = {{"job_id", "j1"}, {"event_id", "e1"}, {"total_images", 12}};
  auto parsed_images = parse_product_images_batch(images);
  ASSERT_TRUE(parsed_images.ok());
  EXPECT_EQ(parsed_images->total_images, 12);

  json videos = {{"job_id", "j1"}, {"event_id", "e2"}, {"total_keyframes", 0},
                 {"videos", {{{"video_id", "v"}, {"count", "garbage"}}}}};
  auto parsed_videos = parse_video_keyframes_batch(videos);
  ASSERT_TRUE(parsed_videos.ok()) << parsed_videos.status().to_string();
  EXPECT_EQ(parsed_videos->total_keyframes, 0);
  EXPECT_EQ(parsed_videos->event_id, "e2");
}

TEST(Events, BatchTotalsMustBeNonNegativeIntegers) {
  json event = {{"job_id", "j1"}, {"event_id", "e1"}, {"total_images", -1}};
  EXPECT_EQ(parse_product_images_batch(event).status().message(),
            "total_images: expected an integer >= 0");
  event["total_images"] = 2.5;
  EXPECT_EQ(parse_product_images_batch(event).status().message(),
            "total_images: expected an integer");
  event["total_images"] = 3.0;
  ASSERT_TRUE(parse_product_images_batch(event).ok());
  EXPECT_EQ(parse_product_images_batch(event)->total_images, 3);
  event["total_images"] = "3";
  EXPECT_FALSE(parse_product_images_batch(event).ok());
}

TEST(Events, InvalidJsonIsAnInvalidArgument) {
  auto parsed = parse_json_body("{\"job_id\": ");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parsed.status().message().rfind("invalid JSON", 0), 0u);
  auto good = parse_json_body("{\"a\": 1}");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ((*good)["a"], 1);
}

TEST(Events, BuildsProductImageMasked) {
  OutgoingEvent a = build_product_image_masked("j1", "i1", "/app/data/masks_product/product_images/i1.png");
  OutgoingEvent b = build_product_image_masked("j1", "i1", "/m.png");
  EXPECT_EQ(a.topic, "products.image.masked");
  EXPECT_EQ(a.payload["job_id"], "j1");
  EXPECT_EQ(a.payload["image_id"], "i1");
  EXPECT_EQ(a.payload["mask_path"], "/app/data/masks_product/product_images/i1.png");
  EXPECT_EQ(a.payload["event_id"].get<std::string>().size(), 36u);
  EXPECT_NE(a.payload["event_id"], b.payload["event_id"]);
}

TEST(Events, BuildsVideoKeyframesMaskedInInputOrder) {
  OutgoingEvent event = build_video_keyframes_masked(
      "j1", "v1", {{"f2", 2.5, "/m/f2.png"}, {"f1", 1.0, "/m/f1.png"}});
  EXPECT_EQ(event.topic, "video.keyframes.masked");
  EXPECT_EQ(event.payload["video_id"], "v1");
  ASSERT_EQ(event.payload["frames"].size(), 2u);
  EXPECT_EQ(event.payload["frames"][0]["frame_id"], "f2");
  EXPECT_DOUBLE_EQ(event.payload["frames"][0]["ts"].get<double>(), 2.5);
  EXPECT_EQ(event.payload["frames"][1]["mask_path"], "/m/f1.png");
}

TEST(Events, BuildsBatchAndCompletionEvents) {
  OutgoingEvent images = build_product_images_masked_batch("j1", 7);
  EXPECT_EQ(images.topic, "products.images.masked.batch");
  EXPECT_EQ(images.payload["total_images"], 7);
  EXPECT_TRUE(images.payload.contains("event_id"));
  OutgoingEvent frames = build_video_keyframes_masked_batch("j1", 0);
  EXPECT_EQ(frames.topic, "video.keyframes.masked.batch");
  EXPECT_EQ(frames.payload["total_keyframes"], 0);

  SegmentationCompletion completion;
  completion.kind = AssetKind::kVideo;
  completion.job_id = "j1";
  completion.total_assets = 10;
  completion.processed_assets = 9;
  completion.failed_assets = 1;
  completion.has_partial_completion = true;
  completion.watermark_ttl = 1800;
  OutgoingEvent done = build_segmentation_completed(completion);
  EXPECT_EQ(done.topic, "video.segmentation.completed");
  EXPECT_EQ(done.payload["total_assets"], 10);
  EXPECT_EQ(done.payload["processed_assets"], 9);
  EXPECT_EQ(done.payload["failed_assets"], 1);
  EXPECT_EQ(done.payload["has_partial_completion"], true);
  EXPECT_EQ(done.payload["watermark_ttl"], 1800);
  EXPECT_EQ(done.payload["idempotent"], true);
  completion.kind = AssetKind::kImage;
  EXPECT_EQ(build_segmentation_completed(completion).topic, "image.segmentation.completed");
}

TEST(Events, ConsumedTopicsAreTheFourOfTheContract) {
  auto topics = consumed_topics();
  ASSERT_EQ(topics.size(), 4u);
  EXPECT_EQ(topics[0], "products.image.ready");
  EXPECT_EQ(topics[3], "videos.keyframes.ready.batch");
}

}  // namespace
}  // namespace segmentor::messaging
