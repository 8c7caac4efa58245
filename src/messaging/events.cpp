#include "messaging/events.h"

#include <cmath>

#include "messaging/name_uuid.h"
#include "messaging/wire_format.h"

namespace segmentor::messaging {
namespace {

using nlohmann::json;

// Field readers. `path` is the field's name as the error should show it ("frames[2].ts").
Status field_error(const std::string& path, std::string_view what) {
  return invalid_argument(path + ": " + std::string(what));
}

Result<const json*> require_object(const json& event, std::string_view event_name) {
  if (!event.is_object()) {
    return invalid_argument(std::string(event_name) + ": expected a JSON object, got " +
                            event.type_name());
  }
  return &event;
}

Result<std::string> read_string(const json& object, const char* key, const std::string& path) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return field_error(path, "missing");
  if (!it->is_string()) return field_error(path, "expected a string");
  return it->get<std::string>();
}

// An identifier (job_id, event_id): a string with at least one character. An empty one names no
// job, so the message is malformed rather than a job the tracker would refuse later.
Result<std::string> read_id(const json& object, const char* key, const std::string& path) {
  SEGMENTOR_ASSIGN_OR_RETURN(std::string value, read_string(object, key, path));
  if (value.empty()) return field_error(path, "must not be empty");
  return value;
}

Result<double> read_number(const json& object, const char* key, const std::string& path) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return field_error(path, "missing");
  if (!it->is_number()) return field_error(path, "expected a number");
  double value = it->get<double>();
  if (!std::isfinite(value)) return field_error(path, "expected a finite number");
  return value;
}

// An integer ≥ 0. JSON producers sometimes write 3.0 for 3: accepted when integral.
Result<std::int64_t> read_count(const json& object, const char* key, const std::string& path) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return field_error(path, "missing");
  std::int64_t value = 0;
  if (it->is_number_unsigned()) {
    if (it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
      return field_error(path, "too large");
    }
    value = static_cast<std::int64_t>(it->get<std::uint64_t>());
  } else if (it->is_number_integer()) {
    value = it->get<std::int64_t>();
  } else if (it->is_number_float()) {
    double d = it->get<double>();
    if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 9.0e15) {
      return field_error(path, "expected an integer");
    }
    value = static_cast<std::int64_t>(d);
  } else {
    return field_error(path, "expected an integer");
  }
  if (value < 0) return field_error(path, "expected an integer >= 0");
  return value;
}

// Optional metadata{width,height,format}: absent or null is fine; wrong types are errors.
Result<std::optional<ImageMetadata>> read_metadata(const json& object) {
  auto it = object.find("metadata");
  if (it == object.end() || it->is_null()) return std::optional<ImageMetadata>{};
  if (!it->is_object()) return field_error("metadata", "expected an object");
  ImageMetadata metadata;
  for (const char* key : {"width", "height"}) {
    auto value = it->find(key);
    if (value == it->end() || value->is_null()) continue;
    SEGMENTOR_ASSIGN_OR_RETURN(std::int64_t n, read_count(*it, key, std::string("metadata.") + key));
    (std::string_view(key) == "width" ? metadata.width : metadata.height) = n;
  }
  auto format = it->find("format");
  if (format != it->end() && !format->is_null()) {
    if (!format->is_string()) return field_error("metadata.format", "expected a string");
    metadata.format = format->get<std::string>();
  }
  return std::optional<ImageMetadata>(std::move(metadata));
}

}  // namespace

std::vector<std::string> consumed_topics() {
  return {std::string(kProductImageReady), std::string(kProductImagesReadyBatch),
          std::string(kVideoKeyframesReady), std::string(kVideoKeyframesReadyBatch)};
}

Result<json> parse_json_body(std::string_view body) {
  json parsed = json::parse(body, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    // Parse again with exceptions to get the position; only on the error path.
    try {
      json reparsed = json::parse(body);
      (void)reparsed;
    } catch (const json::exception& error) {
      // Not only parse_error: a number too large for a double ("1E400") is out_of_range, and
      // letting it escape killed the worker on a malformed message (found by fuzzing).
      return invalid_argument(std::string("invalid JSON: ") + error.what());
    }
    return invalid_argument("invalid JSON");
  }
  return parsed;
}

Result<ProductImageReady> parse_product_image_ready(const json& event) {
  SEGMENTOR_RETURN_IF_ERROR(require_object(event, kProductImageReady).status());
  ProductImageReady out;
  SEGMENTOR_ASSIGN_OR_RETURN(out.product_id, read_string(event, "product_id", "product_id"));
  SEGMENTOR_ASSIGN_OR_RETURN(out.image_id, read_string(event, "image_id", "image_id"));
  SEGMENTOR_ASSIGN_OR_RETURN(out.local_path, read_string(event, "local_path", "local_path"));
  SEGMENTOR_ASSIGN_OR_RETURN(out.job_id, read_id(event, "job_id", "job_id"));
  SEGMENTOR_ASSIGN_OR_RETURN(out.metadata, read_metadata(event));
  return out;
}

Result<ProductImagesBatch> parse_product_images_batch(const json& event) {
  SEGMENTOR_RETURN_IF_ERROR(require_object(event, kProductImagesReadyBatch).status());
  ProductImagesBatch out;
  SEGMENTOR_ASSIGN_OR_RETURN(out.job_id, read_id(event, "job_id", "job_id"));
  SEGMENTOR_ASSIGN_OR_RETURN(out.event_id, read_id(event, "event_id", "event_id"));
  SEGMENTOR_ASSIGN_OR_RETURN(out.total_images, read_count(event, "total_images", "total_images"));
  return out;
}

Result<VideoKeyframesReady> parse_video_keyframes_ready(const json& event) {
  SEGMENTOR_RETURN_IF_ERROR(require_object(event, kVideoKeyframesReady).status());
  VideoKeyframesReady out;
  SEGMENTOR_ASSIGN_OR_RETURN(out.video_id, read_string(event, "video_id", "video_id"));
  SEGMENTOR_ASSIGN_OR_RETURN(out.job_id, read_id(event, "job_id", "job_id"));
  auto frames = event.find("frames");
  if (frames == event.end() || frames->is_null()) return field_error("frames", "missing");
  if (!frames->is_array()) return field_error("frames", "expected an array");
  out.frames.reserve(frames->size());
  for (std::size_t i = 0; i < frames->size(); ++i) {
    const json& frame = (*frames)[i];
    std::string prefix = "frames[" + std::to_string(i) + "]";
    if (!frame.is_object()) return field_error(prefix, "expected an object");
    KeyframeInput input;
    SEGMENTOR_ASSIGN_OR_RETURN(input.frame_id, read_string(frame, "frame_id", prefix + ".frame_id"));
    SEGMENTOR_ASSIGN_OR_RETURN(input.ts, read_number(frame, "ts", prefix + ".ts"));
    SEGMENTOR_ASSIGN_OR_RETURN(input.local_path,
                               read_string(frame, "local_path", prefix + ".local_path"));
    out.frames.push_back(std::move(input));
  }
  return out;
}

Result<VideoKeyframesBatch> parse_video_keyframes_batch(const json& event) {
  SEGMENTOR_RETURN_IF_ERROR(require_object(event, kVideoKeyframesReadyBatch).status());
  VideoKeyframesBatch out;
  SEGMENTOR_ASSIGN_OR_RETURN(out.job_id, read_id(event, "job_id", "job_id"));
  SEGMENTOR_ASSIGN_OR_RETURN(out.event_id, read_id(event, "event_id", "event_id"));
  SEGMENTOR_ASSIGN_OR_RETURN(out.total_keyframes,
                             read_count(event, "total_keyframes", "total_keyframes"));
  return out;
}

OutgoingEvent build_product_image_masked(std::string_view job_id, std::string_view image_id,
                                         std::string_view mask_path) {
  return {std::string(kProductImageMasked),
          {{"event_id", uuid4()},
           {"job_id", std::string(job_id)},
           {"image_id", std::string(image_id)},
           {"mask_path", std::string(mask_path)}}};
}

OutgoingEvent build_video_keyframes_masked(std::string_view job_id, std::string_view video_id,
                                           const std::vector<MaskedFrame>& frames) {
  json list = json::array();
  for (const MaskedFrame& frame : frames) {
    list.push_back({{"frame_id", frame.frame_id}, {"ts", frame.ts}, {"mask_path", frame.mask_path}});
  }
  return {std::string(kVideoKeyframesMasked),
          {{"event_id", uuid4()},
           {"job_id", std::string(job_id)},
           {"video_id", std::string(video_id)},
           {"frames", std::move(list)}}};
}

OutgoingEvent build_product_images_masked_batch(std::string_view job_id,
                                                std::int64_t total_images) {
  return {std::string(kProductImagesMaskedBatch),
          {{"event_id", completion_event_id(kProductImagesMaskedBatch, job_id)},
           {"job_id", std::string(job_id)},
           {"total_images", total_images}}};
}

OutgoingEvent build_video_keyframes_masked_batch(std::string_view job_id,
                                                 std::int64_t total_keyframes) {
  return {std::string(kVideoKeyframesMaskedBatch),
          {{"event_id", completion_event_id(kVideoKeyframesMaskedBatch, job_id)},
           {"job_id", std::string(job_id)},
           {"total_keyframes", total_keyframes}}};
}

std::string completion_event_id(std::string_view topic, std::string_view job_id) {
  std::string name(topic);
  name.push_back('\n');
  name.append(job_id);
  return uuid5(kSegmentorEventNamespace, name);
}

OutgoingEvent build_segmentation_completed(const SegmentationCompletion& completion) {
  std::string_view topic = completion.kind == AssetKind::kProductImage
                               ? kImageSegmentationCompleted
                               : kVideoSegmentationCompleted;
  return {std::string(topic),
          {{"job_id", completion.job_id},
           {"event_id", completion_event_id(topic, completion.job_id)},
           {"total_assets", completion.total_assets},
           {"processed_assets", completion.processed_assets},
           {"failed_assets", completion.failed_assets},
           {"has_partial_completion", completion.has_partial_completion},
           {"watermark_ttl", completion.watermark_ttl},
           {"idempotent", true}}};
}

}  // namespace segmentor::messaging
