// The per-topic halves of the worker: what the consume loop does with a message (parse, check,
// queue tasks) and what the finisher does once its tasks are done (row, event, progress). Each
// path ends in exactly one Worker::settle call: see Note [One settle point] in settlement.h and
// Note [Message lifecycle] in service/worker.h.
#include <spdlog/spdlog.h>

#include <string>
#include <utility>
#include <vector>

#include "messaging/wire_format.h"
#include "pipeline/mask_paths.h"
#include "service/settlement.h"
#include "service/worker.h"
#include "service/worker_message.h"

namespace segmentor::service {

namespace {

Result<nlohmann::json> parse_body(const messaging::Delivery& delivery) {
  return messaging::parse_json_body(delivery.body);
}

std::vector<AssetRecord> failed_records(const std::vector<std::string>& asset_ids) {
  std::vector<AssetRecord> failed;
  failed.reserve(asset_ids.size());
  for (const std::string& id : asset_ids) failed.push_back({id, AssetOutcome::kFailed, ""});
  return failed;
}

// An outcome whose assets are recorded as failed if it ends in the dead-letter queue.
Outcome failed_assets(Status why, std::string_view error_type, const JobKey& key,
                      std::vector<AssetRecord> failed) {
  Outcome outcome = Outcome::Failed(std::move(why), error_type);
  outcome.key = key;
  outcome.failed = std::move(failed);
  return outcome;
}

}  // namespace

Status Worker::record(const Message& message, const JobKey& key,
                      const std::vector<AssetRecord>& assets) {
  auto update = with_database("record progress",
                              [&] { return services_.tracker->record_assets(key, assets); });
  if (!update.ok()) {
    if (update.status().code() != ErrorCode::kUnavailable) {
      spdlog::error("recording progress of {}: {}", to_string(key), update.status().to_string());
    }
    return update.status();
  }
  if (update->duplicates > 0) {
    spdlog::info("{}: {} asset(s) already recorded, not counted again", to_string(key),
                 update->duplicates);
  }
  if (update->completion) publish_completions({*update->completion}, message.correlation_id);
  return Status::Ok();
}

std::optional<std::pair<JobKey, std::vector<std::string>>> Worker::assets_named(
    const messaging::Delivery& delivery) {
  auto body = parse_body(delivery);
  if (!body.ok()) return std::nullopt;
  if (delivery.topic == messaging::kProductImageReady) {
    auto event = messaging::parse_product_image_ready(*body);
    if (!event.ok()) return std::nullopt;
    return std::make_pair(JobKey{event->job_id, AssetKind::kProductImage},
                          std::vector<std::string>{event->image_id});
  }
  if (delivery.topic == messaging::kVideoKeyframesReady) {
    auto event = messaging::parse_video_keyframes_ready(*body);
    if (!event.ok()) return std::nullopt;
    std::vector<std::string> ids;
    for (const auto& frame : event->frames) ids.push_back(frame.frame_id);
    return std::make_pair(JobKey{event->job_id, AssetKind::kVideoFrame}, std::move(ids));
  }
  return std::nullopt;
}

// Note [Resolving input paths] (input_guard.h): the engine reads beneath the root.
std::function<Result<std::vector<std::uint8_t>>(const ReadOptions&)> Worker::reader_for(
    const std::filesystem::path& resolved) const {
  return [this, resolved](const ReadOptions& options) { return guard_.read(resolved, options); };
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
    post([this, message, why = event.status()] { settle(*message, Outcome::Malformed(why)); });
    return;
  }
  message->image = *event;
  const JobKey key{event->job_id, AssetKind::kProductImage};
  Status valid = validate_asset_id(event->image_id).with_context("image_id");
  Result<std::filesystem::path> source =
      valid.ok() ? guard_.resolve(event->local_path) : Result<std::filesystem::path>(valid);
  if (!source.ok()) {
    post([this, message, key, why = source.status()] {
      settle(*message,
             failed_assets(why, kInvalidInput, key, failed_records({message->image->image_id})));
    });
    return;
  }
  message->outcomes.resize(1);
  message->remaining.store(1);
  EngineTask task{AssetKind::kProductImage, event->image_id, *source, std::nullopt,
                  reader_for(*source)};
  submit_task(std::move(task), [this, message](const EngineTask&, const TaskOutcome& outcome) {
    message->outcomes[0] = outcome;
    if (services_.metrics != nullptr) {
      services_.metrics->observe_task("image", outcome.status.ok() ? "done" : "failed",
                                      outcome.total_seconds);
    }
    if (message->remaining.fetch_sub(1) == 1)
      post([this, message] { settle(*message, finish_product_image(*message)); });
  });
}

Outcome Worker::finish_product_image(const Message& message) {
  const messaging::ProductImageReady& event = *message.image;
  const TaskOutcome& outcome = message.outcomes[0];
  const JobKey key{event.job_id, AssetKind::kProductImage};
  const std::vector<AssetRecord> failed = failed_records({event.image_id});
  if (!outcome.status.ok()) {
    const Status why = outcome.status.with_context("image " + event.image_id);
    // Note [Exceptions stop at the engine]: a task that threw would throw again.
    const bool transient = is_transient(why.code()) && !outcome.threw;
    Outcome failure =
        failed_assets(why, transient ? kTransientError : kProcessingError, key, failed);
    failure.transient = transient;
    return failure;
  }
  const std::string mask_path = outcome.paths.product.string();
  auto row = with_database("UPDATE product_images", [&] {
    return services_.mask_paths->set_image_mask(event.image_id, mask_path);
  });
  if (!row.ok()) return failed_assets(row.status(), kDatabaseError, key, failed);
  if (!row->row_matched) {
    spdlog::warn("no product_images row with img_id {}: mask saved, event sent anyway",
                 event.image_id);
  }
  if (Status sent =
          publish(messaging::build_product_image_masked(event.job_id, event.image_id, mask_path),
                  message.correlation_id);
      !sent.ok()) {
    Outcome retry = failed_assets(sent, kTransientError, key, failed);
    retry.transient = true;  // the broker's trouble, not the message's
    return retry;
  }
  if (Status recorded = record(message, key, {{event.image_id, AssetOutcome::kDone, mask_path}});
      !recorded.ok()) {
    return failed_assets(recorded, kDatabaseError, key, failed);
  }
  return Outcome::Done();
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
    post([this, message, why = event.status()] { settle(*message, Outcome::Malformed(why)); });
    return;
  }
  message->video = *event;
  const JobKey key{event->job_id, AssetKind::kVideoFrame};
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
      settle(*message, failed_assets(why, kInvalidInput, key, failed_records(frame_ids)));
    });
    return;
  }
  if (event->frames.empty()) {
    spdlog::info("video {} of job {}: no frames", event->video_id, event->job_id);
    post([this, message] { settle(*message, Outcome::Done()); });
    return;
  }
  message->outcomes.resize(event->frames.size());
  message->remaining.store(static_cast<int>(event->frames.size()));
  for (std::size_t i = 0; i < event->frames.size(); ++i) {
    EngineTask task{AssetKind::kVideoFrame, event->frames[i].frame_id, sources[i], std::nullopt,
                    reader_for(sources[i])};
    submit_task(std::move(task), [this, message, i](const EngineTask&, const TaskOutcome& outcome) {
      message->outcomes[i] = outcome;
      if (services_.metrics != nullptr) {
        services_.metrics->observe_task("video_frame", outcome.status.ok() ? "done" : "failed",
                                        outcome.total_seconds);
      }
      if (message->remaining.fetch_sub(1) == 1)
        post([this, message] { settle(*message, finish_video(*message)); });
    });
  }
}

// Note [Frames that failed transiently]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A keyframes message is many assets. The frames that succeeded are announced and recorded at
// once; the ones that failed permanently (missing, undecodable) are recorded as failed. The ones
// that failed transiently (out of memory after the ladder, I/O, a database error on their row) go
// back through the retry schedule as a copy of the message that holds only them, so one bad
// moment never turns a good frame into a failed one. When their retries run out they are
// dead-lettered and recorded as failed like any other message.
Outcome Worker::finish_video(const Message& message) {
  const messaging::VideoKeyframesReady& event = *message.video;
  const JobKey key{event.job_id, AssetKind::kVideoFrame};
  std::vector<messaging::MaskedFrame> masked;
  std::vector<AssetRecord> records;       // done, and failed for good
  std::vector<std::size_t> retry_frames;  // indexes of frames worth another try
  Status first_failure;
  Status first_transient;
  for (std::size_t i = 0; i < event.frames.size(); ++i) {
    const messaging::KeyframeInput& frame = event.frames[i];
    const TaskOutcome& outcome = message.outcomes[i];
    Status status = outcome.status;
    if (status.ok()) {
      const std::string mask_path = outcome.paths.product.string();
      auto row = with_database("UPDATE video_frames", [&] {
        return services_.mask_paths->set_frame_mask(frame.frame_id, mask_path);
      });
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
    status = status.with_context("frame " + frame.frame_id);
    if (first_failure.ok()) first_failure = status;
    if (is_transient(status.code()) && !outcome.threw) {
      if (first_transient.ok()) first_transient = status;
      retry_frames.push_back(i);
    } else {
      records.push_back({frame.frame_id, AssetOutcome::kFailed, ""});
    }
  }
  std::vector<AssetRecord> retry_failed;
  for (std::size_t i : retry_frames) {
    retry_failed.push_back({event.frames[i].frame_id, AssetOutcome::kFailed, ""});
  }
  if (!first_failure.ok()) {
    spdlog::warn("video {}: {} of {} frames failed ({} worth a retry); first: {}", event.video_id,
                 event.frames.size() - masked.size(), event.frames.size(), retry_frames.size(),
                 first_failure.message());
  }
  if (masked.empty() && retry_frames.empty()) {
    // Every frame failed for good: the whole message goes to the dead-letter queue.
    return failed_assets(first_failure.with_context("video " + event.video_id), kProcessingError,
                         key, records);
  }
  if (!masked.empty()) {
    if (Status sent =
            publish(messaging::build_video_keyframes_masked(event.job_id, event.video_id, masked),
                    message.correlation_id);
        !sent.ok()) {
      // Nothing recorded yet: the whole message again (the masks are already on disk).
      std::vector<AssetRecord> all = retry_failed;
      for (const AssetRecord& r : records) all.push_back({r.asset_id, AssetOutcome::kFailed, ""});
      Outcome retry = failed_assets(sent, kTransientError, key, std::move(all));
      retry.transient = true;
      return retry;
    }
  }
  if (!records.empty()) {
    if (Status recorded = record(message, key, records); !recorded.ok()) {
      std::vector<AssetRecord> all = retry_failed;
      for (const AssetRecord& r : records) all.push_back({r.asset_id, AssetOutcome::kFailed, ""});
      return failed_assets(recorded, kDatabaseError, key, std::move(all));
    }
  }
  if (retry_frames.empty()) return Outcome::Done();
  // Note [Frames that failed transiently]
  Outcome retry = failed_assets(first_transient.with_context("video " + event.video_id),
                                kTransientError, key, std::move(retry_failed));
  retry.transient = true;
  if (retry_frames.size() < event.frames.size()) {
    auto body = parse_body(message.delivery);
    if (body.ok() && body->is_object() && body->contains("frames")) {
      nlohmann::json frames = nlohmann::json::array();
      for (std::size_t i : retry_frames) frames.push_back((*body)["frames"][i]);
      (*body)["frames"] = std::move(frames);
      retry.retry_body = body->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  }
  return retry;
}

// --- *.ready.batch --------------------------------------------------------------------------

Outcome Worker::handle_batch(const Message& message) {
  auto body = parse_body(message.delivery);
  // The correlation id only matters for the completion this batch may publish.
  const std::string correlation_id = messaging::resolve_correlation_id(
      message.delivery.correlation_id, body.ok() ? &*body : nullptr);
  if (!body.ok()) return Outcome::Malformed(body.status());
  const bool images = message.delivery.topic == messaging::kProductImagesReadyBatch;
  JobKey key;
  std::string event_id;
  std::int64_t total = 0;
  if (images) {
    auto event = messaging::parse_product_images_batch(*body);
    if (!event.ok()) return Outcome::Malformed(event.status());
    key = {event->job_id, AssetKind::kProductImage};
    event_id = event->event_id;
    total = event->total_images;
  } else {
    auto event = messaging::parse_video_keyframes_batch(*body);
    if (!event.ok()) return Outcome::Malformed(event.status());
    key = {event->job_id, AssetKind::kVideoFrame};
    event_id = event->event_id;
    total = event->total_keyframes;
  }
  auto update = with_database(
      "record .batch", [&] { return services_.tracker->record_batch(key, event_id, total); });
  if (!update.ok()) return Outcome::Failed(update.status(), kDatabaseError);
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
  if (update->completion) publish_completions({*update->completion}, correlation_id);
  return Outcome::Done();
}

}  // namespace segmentor::service
