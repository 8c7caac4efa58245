// JobTracker: the completion policy of CONTRACT §6 — when a job's image or video side is done, and
// what to publish then. Pure policy: state lives in a JobStore, time comes from a Clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "jobs/clock.h"
#include "jobs/job_store.h"
#include "jobs/job_types.h"

namespace segmentor {

// Note [Completion protocol]
// Per (job_id, asset type) the tracker keeps expected / done / failed. It completes the key at the
// first of (checked in this order, at every update and by poll()):
//   - a .batch announcing 0 assets (kZeroAssets): publish only the *.masked.batch, total = done
//     (0 unless upstream contradicts itself; we report what was really masked);
//   - done + failed >= expected (kAllAccounted);
//   - done * 100 >= expected * threshold_percentage (kThreshold): failures do not count here;
//   - now >= started_at + batch_timeout (kWatermark), per job *and* asset type.
// It never completes while expected is unknown (before the .batch event), whatever the timer.
//
// The watermark starts when the .batch arrives, not at the first asset: the .batch is what makes
// the job's size known, and per-asset events and the .batch travel on different queues, so a
// .batch delayed behind a backlog must not find its job already timed out.
//
// Ordering (CONTRACT §3 FIX: the batch event follows every per-asset event that counted): the
// caller records an asset as done only *after* its masked event was published and confirmed, and
// records a failure after dead-lettering it. A completion decided by that call then follows every
// counted event by construction. A straggler published while another thread completes the job is
// simply not counted — it was not part of the published total.
//
// Exactly once: a completion is decided inside the store transaction that sets completed_at, so
// only one call ever returns it. Counters freeze from then on (late assets are still recorded, so a
// redelivery stays idempotent), and the frozen counters are the published figures. The caller
// publishes segmentation.completed (unless the zero-asset path), then the *.masked.batch, then
// calls acknowledge_completion(). If it crashes or the publish fails in between, the decision is
// still in the store, and is offered again per Note [Completion claims]. The same covers a
// database commit whose outcome was unknown: the store retries, finds the job already completed,
// and the decision surfaces once its claim expires. That makes publishing at-least-once across
// crashes (the events say idempotent: true, and carry the same event_id every time: see
// completion_event_id in messaging/events.h) and exactly-once otherwise.
//
// Note [Completion claims]
// ~~~~~~~~~~~~~~~~~~~~~~~~
// Several workers share one store. The transaction that decides a completion also claims its
// publication for `republish_after` (publish_claimed_until). Anyone else — a replica starting up
// (unpublished_completions()), or any replica's poll() — only gets a completion whose claim has
// expired, and takes the claim in the same atomic step (UPDATE … RETURNING in PostgreSQL), so
// one worker republishes it, not all of them. Times come from the injected Clock; in `serve` it
// follows the database's clock (storage/database_clock.h), so replicas with skewed clocks agree
// on when a lease or a watermark ends.

struct JobTrackerOptions {
  // COMPLETION_THRESHOLD_PERCENTAGE, in (0, 100].
  double completion_threshold_percentage = 90.0;
  // BATCH_TIMEOUT_SECONDS: the watermark, counted from the .batch event. Also the watermark_ttl.
  std::chrono::seconds batch_timeout{1800};
  // poll() re-offers a decided but unacknowledged completion after this long.
  std::chrono::seconds republish_after{60};
};

// What a .batch event did.
enum class BatchDisposition {
  kApplied,      // expected is now known
  kDuplicate,    // same event_id as the .batch already applied: ignored
  kConflicting,  // another .batch (different event_id) was applied before: ignored, log it
};

struct BatchUpdate {
  BatchDisposition disposition = BatchDisposition::kApplied;
  std::optional<CompletionDecision> completion;  // set when this event completed the job
};

struct AssetUpdate {
  int counted = 0;     // assets that changed the counters (new, or an earlier failure now done)
  int duplicates = 0;  // already recorded with this outcome (or done before): not counted again
  int late = 0;        // recorded after the job completed: kept, not counted
  std::optional<CompletionDecision> completion;  // set when this call completed the job
};

// Decides job completion (see Note [Completion protocol]). Thread-safe: it holds no state of its
// own beyond its options; every update is one JobStore transaction. Does not own the store or
// the clock, which must outlive it.
class JobTracker {
 public:
  static Result<std::unique_ptr<JobTracker>> create(const JobTrackerOptions& options,
                                                    JobStore* store, const Clock* clock);

  JobTracker(const JobTracker&) = delete;
  JobTracker& operator=(const JobTracker&) = delete;

  // A `products.images.ready.batch` / `videos.keyframes.ready.batch` event. `total` >= 0.
  Result<BatchUpdate> record_batch(const JobKey& key, const std::string& event_id,
                                   std::int64_t total);

  // Assets of one message (one product image, or the frames of one keyframes message), recorded
  // together. Record a done asset only after its masked event was published; a failed one after
  // it was dead-lettered. Idempotent by asset id; a failure later redelivered and done is moved
  // from failed to done.
  Result<AssetUpdate> record_assets(const JobKey& key, const std::vector<AssetRecord>& assets);
  Result<AssetUpdate> record_asset(const JobKey& key, const AssetRecord& asset) {
    return record_assets(key, std::vector<AssetRecord>{asset});
  }

  // Completions due now: watermarks that fired, and decided completions whose publisher did not
  // acknowledge them within `republish_after` (claimed for this caller: Note [Completion
  // claims]). Call it periodically (e.g. every few seconds).
  Result<std::vector<CompletionDecision>> poll();

  // Decided completions not yet acknowledged and not claimed by a live publisher, claimed for
  // this caller (at start-up, before consuming).
  Result<std::vector<CompletionDecision>> unpublished_completions();

  // The caller published the completion's events; it will not be offered again.
  Status acknowledge_completion(const JobKey& key);

  // The stored progress of `key`, nullopt if unknown (logs, metrics, tests).
  Result<std::optional<JobProgress>> progress(const JobKey& key);

  const JobTrackerOptions& options() const { return options_; }

 private:
  JobTracker(const JobTrackerOptions& options, JobStore* store, const Clock* clock)
      : options_(options), store_(store), clock_(clock) {}

  // The rule that completes `progress` at `now`, kNone while none does.
  CompletionReason due_reason(const JobProgress& progress, JobTime now) const;
  // Marks `progress` completed when a rule holds; returns the decision to publish.
  std::optional<CompletionDecision> maybe_complete(const JobKey& key, JobProgress& progress,
                                                   JobTime now) const;
  CompletionDecision decision_for(const JobKey& key, const JobProgress& progress) const;

  const JobTrackerOptions options_;
  JobStore* const store_;
  const Clock* const clock_;
};

}  // namespace segmentor
