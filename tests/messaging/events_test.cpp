#include "messaging/events.h"

#include <gtest/gtest.h>

#include "messaging/name_uuid.h"

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
  completion.kind = AssetKind::kVideoFrame;
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
  completion.kind = AssetKind::kProductImage;
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

namespace segmentor::messaging {
namespace {

// RFC 4122 appendix / Python's documented example: uuid5(NAMESPACE_DNS, "python.org").
TEST(NameUuid, MatchesTheKnownVersion5Vector) {
  constexpr UuidBytes kDns = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
                              0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};
  EXPECT_EQ(uuid5(kDns, "python.org"), "886313e1-3b8a-5372-9b90-0c9aee199e5d");
}

TEST(NameUuid, Sha1MatchesFips180Vectors) {
  auto hex = [](const std::array<std::uint8_t, 20>& d) {
    std::string out;
    constexpr char kHex[] = "0123456789abcdef";
    for (auto b : d) {
      out.push_back(kHex[b >> 4]);
      out.push_back(kHex[b & 0xF]);
    }
    return out;
  };
  EXPECT_EQ(hex(sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(hex(sha1("")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(hex(sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

// Issue 11, item 1: a republished completion must be recognisable downstream.
TEST(Events, CompletionEventsOfAJobAlwaysCarryTheSameEventId) {
  SegmentationCompletion completion;
  completion.kind = AssetKind::kProductImage;
  completion.job_id = "job-42";
  const auto first = build_segmentation_completed(completion);
  completion.processed_assets = 3;  // a republish carries the same figures; the id is the job's
  const auto again = build_segmentation_completed(completion);
  EXPECT_EQ(first.payload["event_id"], again.payload["event_id"]);
  EXPECT_EQ(first.payload["event_id"].get<std::string>()[14], '5') << "a version-5 UUID";
  EXPECT_EQ(build_product_images_masked_batch("job-42", 3).payload["event_id"],
            build_product_images_masked_batch("job-42", 3).payload["event_id"]);
  // Distinct per event kind and per job.
  EXPECT_NE(first.payload["event_id"],
            build_product_images_masked_batch("job-42", 3).payload["event_id"]);
  completion.kind = AssetKind::kVideoFrame;
  EXPECT_NE(first.payload["event_id"],
            build_segmentation_completed(completion).payload["event_id"]);
  completion.kind = AssetKind::kProductImage;
  completion.job_id = "job-43";
  EXPECT_NE(first.payload["event_id"],
            build_segmentation_completed(completion).payload["event_id"]);
}

// Found by tests/fuzz/event_parser_fuzz.cpp: a number overflowing a double made the error path's
// second parse throw out_of_range, which nothing caught (std::terminate).
TEST(Events, ANumberTooLargeIsInvalidJsonNotACrash) {
  auto parsed = parse_json_body("35267E35267");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(parse_json_body("{\"total_images\": 1E400}").ok());
}

// Issue 11, item 2: an empty job id names no job; the message is malformed.
TEST(Events, EmptyJobOrEventIdIsMalformed) {
  using nlohmann::json;
  EXPECT_FALSE(
      parse_product_image_ready(
          json{{"product_id", "p"}, {"image_id", "i"}, {"local_path", "/x.jpg"}, {"job_id", ""}})
          .ok());
  EXPECT_FALSE(parse_video_keyframes_ready(
                   json{{"video_id", "v"}, {"job_id", ""}, {"frames", json::array()}})
                   .ok());
  EXPECT_FALSE(
      parse_product_images_batch(json{{"job_id", "j"}, {"event_id", ""}, {"total_images", 1}})
          .ok());
  EXPECT_FALSE(
      parse_video_keyframes_batch(json{{"job_id", ""}, {"event_id", "e"}, {"total_keyframes", 1}})
          .ok());
}

}  // namespace
}  // namespace segmentor::messaging
