// The vocabulary of job progress (CONTRACT §6): which job, which asset, what happened to it, and
// what a completion publishes. Plain values, shared by the tracker and every JobStore.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/asset_kind.h"
#include "common/status.h"

namespace segmentor {

// Wall-clock time: progress is persisted and must mean the same after a restart.
using JobClock = std::chrono::system_clock;
using JobTime = JobClock::time_point;

struct JobKey {
  std::string job_id;
  AssetKind asset_kind = AssetKind::kProductImage;

  friend bool operator==(const JobKey&, const JobKey&) = default;
  friend auto operator<=>(const JobKey&, const JobKey&) = default;
};

// "job-1/image", for logs.
std::string to_string(const JobKey& key);

// What became of one asset (a product image, or one keyframe).
enum class AssetOutcome { kDone, kFailed };

std::string_view to_string(AssetOutcome outcome);
Result<AssetOutcome> parse_asset_outcome(std::string_view text);

// One asset to record. `mask_path` is the product mask of a done asset (empty for a failed one).
struct AssetRecord {
  std::string asset_id;  // image_id or frame_id
  AssetOutcome outcome = AssetOutcome::kDone;
  std::string mask_path;
};

// Why a job/asset type completed; kNone while it has not.
enum class CompletionReason {
  kNone,
  kZeroAssets,    // the .batch announced 0 assets
  kAllAccounted,  // done + failed >= expected
  kThreshold,     // done >= expected * COMPLETION_THRESHOLD_PERCENTAGE / 100
  kWatermark,     // BATCH_TIMEOUT_SECONDS passed since the .batch arrived
};

std::string_view to_string(CompletionReason reason);
Result<CompletionReason> parse_completion_reason(std::string_view text);

// The persisted state of one job/asset type. Counters freeze when the job completes, so they are
// also the figures its completion published (see Note [Completion protocol] in job_tracker.h).
struct JobProgress {
  std::optional<std::int64_t> expected;       // unknown until the .batch event arrives
  std::int64_t done = 0;                      // assets whose masked event was published
  std::int64_t failed = 0;                    // assets given up on (dead-lettered)
  std::optional<std::string> batch_event_id;  // event_id of the .batch that set `expected`
  std::optional<JobTime> started_at;          // when that .batch arrived: the watermark's start
  std::optional<JobTime> completed_at;        // when completion was decided
  CompletionReason completion_reason = CompletionReason::kNone;
  bool completion_published = false;  // the caller confirmed both completion events
  // Until then one worker holds the right to publish the completion (Note [Completion claims]).
  std::optional<JobTime> publish_claimed_until;

  bool completed() const { return completed_at.has_value(); }
  friend bool operator==(const JobProgress&, const JobProgress&) = default;
};

// What a completion tells the caller to publish, in this order:
//  1. if `publish_completed_event`: `image|video.segmentation.completed` with total_assets,
//     processed_assets, failed_assets, has_partial_completion, watermark_ttl, idempotent: true;
//  2. `products.images.masked.batch` (total_images) or `video.keyframes.masked.batch`
//     (total_keyframes) with `masked_batch_total`;
// then JobTracker::acknowledge_completion(key).
struct CompletionDecision {
  JobKey key;
  CompletionReason reason = CompletionReason::kNone;
  std::int64_t total_assets = 0;        // expected
  std::int64_t processed_assets = 0;    // done
  std::int64_t failed_assets = 0;       // failed (the real count; upstream sent 0)
  bool has_partial_completion = false;  // done < expected
  std::int64_t watermark_ttl = 0;       // BATCH_TIMEOUT_SECONDS
  bool publish_completed_event = true;  // false on the zero-asset path (CONTRACT §3)
  std::int64_t masked_batch_total = 0;  // done at the moment of completion

  friend bool operator==(const CompletionDecision&, const CompletionDecision&) = default;
};

}  // namespace segmentor
