// The per-topic halves of the worker: what the consume loop does with a message (parse, check,
// queue tasks) and what the finisher does once its tasks are done (row, event, progress, ack).
// See Note [Message lifecycle] in service/worker.h.
#include <spdlog/spdlog.h>

#include <string>
#include <utility>
#include <vector>

#include "messaging/wire_format.h"
#include "pipeline/mask_paths.h"
#include "service/worker.h"
#include "service/worker_message.h"

namespace segmentor::service {

namespace {

// x-error-type values.
constexpr std::string_view kInvalidInput = "InvalidInput";
constexpr std::string_view kProcessingError = "ProcessingError";
constexpr std::string_view kTransientError = "TransientError";
constexpr std::string_view kDatabaseError = "DatabaseError";

// Worth another try later: the memory ladder gave up, the filesystem or a library hiccuped.
// A missing or undecodable file, a bad id or a size limit stays wrong however often we try.
bool is_transient(ErrorCode code) {
  return code == ErrorCode::kOutOfMemory || code == ErrorCode::kUnavailable ||
         code == ErrorCode::kIo || code == ErrorCode::kInternal;
}

Result<nlohmann::json> parse_body(const messaging::Delivery& delivery) {
  return messaging::parse_json_body(delivery.body);
}

}  // namespace

void Worker::malformed(const Message& message, const Status& why) {
  (void)dead_letter(message, why, messaging::kMalformedMessage);
}

bool Worker::record(const Message& message, const JobKey& key,
                    const std::vector<AssetRecord>& assets) {
  auto update = with_database("record progress",
                              [&] { return services_.tracker->record_assets(key, assets); });
  if (!update.ok()) {
    if (update.status().code() != ErrorCode::kUnavailable) {
      spdlog::error("recording progress of {}: {}", to_string(key), update.status().to_string());
    }
    return false;
  }
  if (update->duplicates > 0) {
    spdlog::info("{}: {} asset(s) already recorded, not counted again", to_string(key),
                 update->duplicates);
  }
  if (update->completion) publish_completions({*update->completion}, message.correlation_id);
  return true;
}

void Worker::reject_assets(const std::shared_ptr<Message>& message, const JobKey& key,
                           const std::vector<std::string>& asset_ids, const Status& why,
                           std::string_view error_type) {
  if (!dead_letter(*message, why, error_type)) return;  // still in the broker: nothing to record
  std::vector<AssetRecord> failed;
  for (const std::string& id : asset_ids) failed.push_back({id, AssetOutcome::kFailed, ""});
  (void)record(*message, key, failed);
}

// --- products.image.ready -------------------------------------------------------------------

void Worker::start_product_image(std::shared_ptr<Message> message) {
  auto body = parse_body(message->delivery);
  message->correlation_id = messaging::resolve_correlation_id(message->delivery.correlation_id,
                                                              body.ok() ? &*body : nullptr);
  Result<messaging::ProductImageReady> event =
      body.ok() ? messaging::parse_product_image_ready(*body)
                : Result<messaging::ProductImageReady>(body.status());
  if (!event.ok()) {
    post([this, message, why = event.status()] { malformed(*message, why); });
    return;
  }
  message->image = *event;
  const JobKey key{event->job_id, AssetType::kImage};
  Status valid = validate_asset_id(event->image_id).with_context("image_id");
  Result<std::filesystem::path> source =
      valid.ok() ? guard_.resolve(event->local_path) : Result<std::filesystem::path>(valid);
  if (!source.ok()) {
    post([this, message, key, why = source.status()] {
      reject_assets(message, key, {message->image->image_id}, why, kInvalidInput);
    });
    return;
  }
  message->outcomes.resize(1);
  message->remaining.store(1);
  EngineTask task{AssetKind::kProductImage, event->image_id, *source, std::nullopt};
  submit_task(std::move(task), [this, message](const EngineTask&, const TaskOutcome& outcome) {
    message->outcomes[0] = outcome;
    if (services_.metrics != nullptr) {
      services_.metrics->observe_task("image", outcome.status.ok() ? "done" : "failed",
                                      outcome.total_seconds);
    }
    if (message->remaining.fetch_sub(1) == 1)
      post([this, message] { finish_product_image(message); });
  });
}

void Worker::finish_product_image(const std::shared_ptr<Message>& message) {
  const messaging::ProductImageReady& event = *message->image;
  const TaskOutcome& outcome = message->outcomes[0];
  const JobKey key{event.job_id, AssetType::kImage};
  const AssetRecord failed{event.image_id, AssetOutcome::kFailed, ""};
  if (!outcome.status.ok()) {
    const bool transient = is_transient(outcome.status.code());
    const Status why = outcome.status.with_context("image " + event.image_id);
    const bool gone = transient ? retry_later(*message, why, kTransientError)
                                : dead_letter(*message, why, kProcessingError);
    if (gone) (void)record(*message, key, {failed});
    return;
  }
  const std::string mask_path = outcome.paths.product.string();
  auto row = with_database("UPDATE product_images", [&] {
    return services_.mask_paths->set_image_mask(event.image_id, mask_path);
  });
  if (!row.ok()) {
    if (row.status().code() == ErrorCode::kUnavailable) return;  // shutting down: redelivered
    if (retry_later(*message, row.status(), kDatabaseError)) (void)record(*message, key, {failed});
    return;
  }
  if (!row->row_matched) {
    spdlog::warn("no product_images row with img_id {}: mask saved, event sent anyway",
                 event.image_id);
  }
  if (Status sent =
          publish(messaging::build_product_image_masked(event.job_id, event.image_id, mask_path),
                  message->correlation_id);
      !sent.ok()) {
    (void)retry_later(*message, sent, kTransientError);
    return;
  }
  if (!record(*message, key, {{event.image_id, AssetOutcome::kDone, mask_path}})) return;
  ack(*message);
}

// --- videos.keyframes.ready -----------------------------------------------------------------

void Worker::start_video(std::shared_ptr<Message> message) {
  auto body = parse_body(message->delivery);
  message->correlation_id = messaging::resolve_correlation_id(message->delivery.correlation_id,
                                                              body.ok() ? &*body : nullptr);
  Result<messaging::VideoKeyframesReady> event =
      body.ok() ? messaging::parse_video_keyframes_ready(*body)
                : Result<messaging::VideoKeyframesReady>(body.status());
  if (!event.ok()) {
    post([this, message, why = event.status()] { malformed(*message, why); });
    return;
  }
  message->video = *event;
  const JobKey key{event->job_id, AssetType::kVideo};
  std::vector<std::string> frame_ids;
  std::vector<std::filesystem::path> sources;
  Status problem;
  for (std::size_t i = 0; i < event->frames.size(); ++i) {
    const messaging::KeyframeInput& frame = event->frames[i];
    frame_ids.push_back(frame.frame_id);
    if (!problem.ok()) continue;
    const std::string where = "frames[" + std::to_string(i) + "]";
    problem = validate_asset_id(frame.frame_id).with_context(where + ".frame_id");
    if (!problem.ok()) continue;
    auto source = guard_.resolve(frame.local_path);
    if (!source.ok()) {
      problem = source.status().with_context(where);
      continue;
    }
    sources.push_back(*source);
  }
  // One unsafe frame makes the whole message suspect: none of it is followed.
  if (!problem.ok()) {
    post([this, message, key, frame_ids, why = problem] {
      reject_assets(message, key, frame_ids, why, kInvalidInput);
    });
    return;
  }
  if (event->frames.empty()) {
    spdlog::info("video {} of job {}: no frames", event->video_id, event->job_id);
    post([this, message] { ack(*message); });
    return;
  }
  message->outcomes.resize(event->frames.size());
  message->remaining.store(static_cast<int>(event->frames.size()));
  for (std::size_t i = 0; i < event->frames.size(); ++i) {
    EngineTask task{AssetKind::kVideoFrame, event->frames[i].frame_id, sources[i], std::nullopt};
    submit_task(std::move(task), [this, message, i](const EngineTask&, const TaskOutcome& outcome) {
      message->outcomes[i] = outcome;
      if (services_.metrics != nullptr) {
        services_.metrics->observe_task("video_frame", outcome.status.ok() ? "done" : "failed",
                                        outcome.total_seconds);
      }
      if (message->remaining.fetch_sub(1) == 1) post([this, message] { finish_video(message); });
    });
  }
}

void Worker::finish_video(const std::shared_ptr<Message>& message) {
  const messaging::VideoKeyframesReady& event = *message->video;
  const JobKey key{event.job_id, AssetType::kVideo};
  std::vector<messaging::MaskedFrame> masked;
  std::vector<AssetRecord> records;
  Status first_failure;
  bool all_transient = true;
  for (std::size_t i = 0; i < event.frames.size(); ++i) {
    const messaging::KeyframeInput& frame = event.frames[i];
    const TaskOutcome& outcome = message->outcomes[i];
    Status status = outcome.status;
    if (status.ok()) {
      const std::string mask_path = outcome.paths.product.string();
      auto row = with_database("UPDATE video_frames", [&] {
        return services_.mask_paths->set_frame_mask(frame.frame_id, mask_path);
      });
      if (!row.ok() && row.status().code() == ErrorCode::kUnavailable) return;  // shutting down
      if (row.ok()) {
        if (!row->row_matched) {
          spdlog::warn("no video_frames row with frame_id {}: mask saved, event sent anyway",
                       frame.frame_id);
        }
        masked.push_back({frame.frame_id, frame.ts, mask_path});
        records.push_back({frame.frame_id, AssetOutcome::kDone, mask_path});
        continue;
      }
      status = row.status();
    }
    if (first_failure.ok()) first_failure = status.with_context("frame " + frame.frame_id);
    all_transient = all_transient && is_transient(status.code());
    records.push_back({frame.frame_id, AssetOutcome::kFailed, ""});
  }
  if (masked.empty()) {
    // Nothing to announce: the whole message failed.
    const Status why =
        first_failure.with_context("video " + event.video_id + ": every frame failed");
    const bool gone = all_transient ? retry_later(*message, why, kTransientError)
                                    : dead_letter(*message, why, kProcessingError);
    if (gone) (void)record(*message, key, records);
    return;
  }
  if (!first_failure.ok()) {
    spdlog::warn("video {}: {} of {} frames failed; first: {}", event.video_id,
                 event.frames.size() - masked.size(), event.frames.size(), first_failure.message());
  }
  if (Status sent =
          publish(messaging::build_video_keyframes_masked(event.job_id, event.video_id, masked),
                  message->correlation_id);
      !sent.ok()) {
    (void)retry_later(*message, sent, kTransientError);
    return;
  }
  if (!record(*message, key, records)) return;
  ack(*message);
}

// --- *.ready.batch --------------------------------------------------------------------------

void Worker::handle_batch(const std::shared_ptr<Message>& message) {
  auto body = parse_body(message->delivery);
  message->correlation_id = messaging::resolve_correlation_id(message->delivery.correlation_id,
                                                              body.ok() ? &*body : nullptr);
  if (!body.ok()) return malformed(*message, body.status());
  const bool images = message->delivery.topic == messaging::kProductImagesReadyBatch;
  JobKey key;
  std::string event_id;
  std::int64_t total = 0;
  if (images) {
    auto event = messaging::parse_product_images_batch(*body);
    if (!event.ok()) return malformed(*message, event.status());
    key = {event->job_id, AssetType::kImage};
    event_id = event->event_id;
    total = event->total_images;
  } else {
    auto event = messaging::parse_video_keyframes_batch(*body);
    if (!event.ok()) return malformed(*message, event.status());
    key = {event->job_id, AssetType::kVideo};
    event_id = event->event_id;
    total = event->total_keyframes;
  }
  auto update = with_database(
      "record .batch", [&] { return services_.tracker->record_batch(key, event_id, total); });
  if (!update.ok()) {
    if (update.status().code() == ErrorCode::kUnavailable) return;  // shutting down
    (void)retry_later(*message, update.status(), kDatabaseError);
    return;
  }
  switch (update->disposition) {
    case BatchDisposition::kApplied:
      spdlog::info("{}: expecting {} asset(s)", to_string(key), total);
      break;
    case BatchDisposition::kDuplicate:
      spdlog::info("{}: duplicate .batch {} ignored", to_string(key), event_id);
      break;
    case BatchDisposition::kConflicting:
      spdlog::warn("{}: .batch {} conflicts with the one applied before; ignored", to_string(key),
                   event_id);
      break;
  }
  if (update->completion) publish_completions({*update->completion}, message->correlation_id);
  ack(*message);
}

}  // namespace segmentor::service
