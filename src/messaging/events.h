// The events of CONTRACT §2 (consumed) and §3 (emitted): parsing with field-naming errors, and
// builders. Pure functions over nlohmann::json; no broker involved. Parsers accept extra fields;
// errors are kInvalidArgument with the path of the offending field ("frames[2].ts: expected a
// number"), which is what goes into x-failure-reason when the message is dead-lettered.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/asset_kind.h"
#include "common/status.h"

namespace segmentor::messaging {

// Consumed (CONTRACT §2).
inline constexpr std::string_view kProductImageReady = "products.image.ready";
inline constexpr std::string_view kProductImagesReadyBatch = "products.images.ready.batch";
inline constexpr std::string_view kVideoKeyframesReady = "videos.keyframes.ready";
inline constexpr std::string_view kVideoKeyframesReadyBatch = "videos.keyframes.ready.batch";
// Emitted (CONTRACT §3).
inline constexpr std::string_view kProductImageMasked = "products.image.masked";
inline constexpr std::string_view kVideoKeyframesMasked = "video.keyframes.masked";
inline constexpr std::string_view kProductImagesMaskedBatch = "products.images.masked.batch";
inline constexpr std::string_view kVideoKeyframesMaskedBatch = "video.keyframes.masked.batch";
inline constexpr std::string_view kImageSegmentationCompleted = "image.segmentation.completed";
inline constexpr std::string_view kVideoSegmentationCompleted = "video.segmentation.completed";

// The four topics `segmentor serve` subscribes to.
std::vector<std::string> consumed_topics();

// The error type recorded in x-error-type for a message that failed to parse.
inline constexpr std::string_view kMalformedMessage = "MalformedMessage";

struct ImageMetadata {
  std::optional<std::int64_t> width;
  std::optional<std::int64_t> height;
  std::optional<std::string> format;
};

struct ProductImageReady {
  std::string product_id;
  std::string image_id;
  std::string local_path;
  std::string job_id;
  std::optional<ImageMetadata> metadata;
};

struct ProductImagesBatch {
  std::string job_id;
  std::string event_id;
  std::int64_t total_images = 0;
};

struct KeyframeInput {
  std::string frame_id;
  double ts = 0.0;  // seconds into the video; echoed in the masked event
  std::string local_path;
};

struct VideoKeyframesReady {
  std::string video_id;
  std::string job_id;
  std::vector<KeyframeInput> frames;
};

struct VideoKeyframesBatch {
  std::string job_id;
  std::string event_id;
  std::int64_t total_keyframes = 0;  // the producer's `videos` array is ignored
};

// The body as JSON; kInvalidArgument "invalid JSON: ..." when it is not.
Result<nlohmann::json> parse_json_body(std::string_view body);

Result<ProductImageReady> parse_product_image_ready(const nlohmann::json& event);
Result<ProductImagesBatch> parse_product_images_batch(const nlohmann::json& event);
Result<VideoKeyframesReady> parse_video_keyframes_ready(const nlohmann::json& event);
Result<VideoKeyframesBatch> parse_video_keyframes_batch(const nlohmann::json& event);

// An event to publish: routing key and payload (without `_metadata`; the broker client adds it).
struct OutgoingEvent {
  std::string topic;
  nlohmann::json payload;
};

struct MaskedFrame {
  std::string frame_id;
  double ts = 0.0;
  std::string mask_path;
};

struct SegmentationCompletion {
  AssetKind kind = AssetKind::kProductImage;
  std::string job_id;
  std::int64_t total_assets = 0;
  std::int64_t processed_assets = 0;
  std::int64_t failed_assets = 0;
  bool has_partial_completion = false;
  std::int64_t watermark_ttl = 0;  // seconds (BATCH_TIMEOUT_SECONDS)
};

// The per-asset builders mint a new uuid4 `event_id`. The job-level ones (*.masked.batch and
// *.segmentation.completed) use completion_event_id(): a job's completion is one fact, so every
// publication of it — a republish after a crash, or by another replica — carries the same
// event_id and downstream deduplicates on it (they say "idempotent": true).
OutgoingEvent build_product_image_masked(std::string_view job_id, std::string_view image_id,
                                         std::string_view mask_path);
// Frames in input order; the caller passes successful frames only and sends nothing when none.
OutgoingEvent build_video_keyframes_masked(std::string_view job_id, std::string_view video_id,
                                           const std::vector<MaskedFrame>& frames);
OutgoingEvent build_product_images_masked_batch(std::string_view job_id,
                                                std::int64_t total_images);
OutgoingEvent build_video_keyframes_masked_batch(std::string_view job_id,
                                                 std::int64_t total_keyframes);
// image.segmentation.completed or video.segmentation.completed, with "idempotent": true.
OutgoingEvent build_segmentation_completed(const SegmentationCompletion& completion);

// The event_id of `topic`'s job-level event for `job_id`: uuid5(kSegmentorEventNamespace,
// topic + "\n" + job_id). The topic names the asset type, so each of a job's four completion
// events has its own id.
std::string completion_event_id(std::string_view topic, std::string_view job_id);

}  // namespace segmentor::messaging
