#include "jobs/job_tracker.h"

#include <string>
#include <utility>

namespace segmentor {

Result<std::unique_ptr<JobTracker>> JobTracker::create(const JobTrackerOptions& options,
                                                       JobStore* store, const Clock* clock) {
  if (store == nullptr || clock == nullptr) {
    return invalid_argument("job tracker: a store and a clock are required");
  }
  // Written as a negated range so that NaN is rejected too.
  if (!(options.completion_threshold_percentage > 0.0 &&
        options.completion_threshold_percentage <= 100.0)) {
    return invalid_argument(
        "job tracker: COMPLETION_THRESHOLD_PERCENTAGE must be in (0, 100], got " +
        std::to_string(options.completion_threshold_percentage));
  }
  if (options.batch_timeout.count() <= 0) {
    return invalid_argument("job tracker: BATCH_TIMEOUT_SECONDS must be positive, got " +
                            std::to_string(options.batch_timeout.count()));
  }
  if (options.republish_after.count() < 0) {
    return invalid_argument("job tracker: republish_after must not be negative");
  }
  return std::unique_ptr<JobTracker>(new JobTracker(options, store, clock));
}

// See Note [Completion protocol] for the order of the rules.
CompletionReason JobTracker::due_reason(const JobProgress& progress, JobTime now) const {
  if (progress.completed() || !progress.expected.has_value()) return CompletionReason::kNone;
  const std::int64_t expected = *progress.expected;
  if (expected == 0) return CompletionReason::kZeroAssets;
  if (progress.done + progress.failed >= expected) return CompletionReason::kAllAccounted;
  // done >= expected * pct / 100, multiplied out so that 90 % of 10 is exactly 9.
  if (static_cast<double>(progress.done) * 100.0 >=
      static_cast<double>(expected) * options_.completion_threshold_percentage) {
    return CompletionReason::kThreshold;
  }
  if (progress.started_at.has_value() && now >= *progress.started_at + options_.batch_timeout) {
    return CompletionReason::kWatermark;
  }
  return CompletionReason::kNone;
}

std::optional<CompletionDecision> JobTracker::maybe_complete(const JobKey& key,
                                                             JobProgress& progress,
                                                             JobTime now) const {
  const CompletionReason reason = due_reason(progress, now);
  if (reason == CompletionReason::kNone) return std::nullopt;
  progress.completed_at = now;
  progress.completion_reason = reason;
  progress.completion_published = false;
  // Note [Completion claims]: the decider publishes; nobody else until this runs out.
  progress.publish_claimed_until = now + options_.republish_after;
  return decision_for(key, progress);
}

CompletionDecision JobTracker::decision_for(const JobKey& key, const JobProgress& progress) const {
  CompletionDecision decision;
  decision.key = key;
  decision.reason = progress.completion_reason;
  decision.total_assets = progress.expected.value_or(0);
  decision.processed_assets = progress.done;
  decision.failed_assets = progress.failed;
  decision.has_partial_completion = progress.done < decision.total_assets;
  decision.watermark_ttl = options_.batch_timeout.count();
  decision.publish_completed_event = progress.completion_reason != CompletionReason::kZeroAssets;
  decision.masked_batch_total = progress.done;
  return decision;
}

Result<BatchUpdate> JobTracker::record_batch(const JobKey& key, const std::string& event_id,
                                             std::int64_t total) {
  if (key.job_id.empty()) return invalid_argument("batch event without a job_id");
  if (event_id.empty())
    return invalid_argument("batch event for " + to_string(key) + " without an event_id");
  if (total < 0) {
    return invalid_argument("batch event for " + to_string(key) + " announces " +
                            std::to_string(total) + " assets");
  }
  const JobTime now = clock_->now();
  BatchUpdate update;
  auto body = [&](JobProgress& progress, JobTransaction&) -> Status {
    update = BatchUpdate{};  // the store may run this body again
    if (progress.batch_event_id.has_value()) {
      update.disposition = *progress.batch_event_id == event_id ? BatchDisposition::kDuplicate
                                                                : BatchDisposition::kConflicting;
      return Status::Ok();
    }
    progress.expected = total;
    progress.batch_event_id = event_id;
    progress.started_at = now;
    update.disposition = BatchDisposition::kApplied;
    update.completion = maybe_complete(key, progress, now);
    return Status::Ok();
  };
  SEGMENTOR_RETURN_IF_ERROR(store_->transact(key, body));
  return update;
}

Result<AssetUpdate> JobTracker::record_assets(const JobKey& key,
                                              const std::vector<AssetRecord>& assets) {
  if (key.job_id.empty()) return invalid_argument("asset without a job_id");
  for (const AssetRecord& asset : assets) {
    if (asset.asset_id.empty()) {
      return invalid_argument("asset of " + to_string(key) + " without an id");
    }
  }
  const JobTime now = clock_->now();
  AssetUpdate update;
  auto body = [&](JobProgress& progress, JobTransaction& txn) -> Status {
    update = AssetUpdate{};  // the store may run this body again
    for (const AssetRecord& asset : assets) {
      SEGMENTOR_ASSIGN_OR_RETURN(const std::optional<AssetOutcome> prior,
                                 txn.find_asset(asset.asset_id));
      // Only a failure turning into a success changes a recorded asset; a success stays one.
      const bool upgrade = prior == AssetOutcome::kFailed && asset.outcome == AssetOutcome::kDone;
      if (prior.has_value() && !upgrade) {
        ++update.duplicates;
        continue;
      }
      SEGMENTOR_RETURN_IF_ERROR(txn.put_asset(asset, now));
      if (progress.completed()) {
        ++update.late;
        continue;
      }
      if (upgrade) --progress.failed;
      if (asset.outcome == AssetOutcome::kDone) {
        ++progress.done;
      } else {
        ++progress.failed;
      }
      ++update.counted;
    }
    update.completion = maybe_complete(key, progress, now);
    return Status::Ok();
  };
  SEGMENTOR_RETURN_IF_ERROR(store_->transact(key, body));
  return update;
}

Result<std::vector<CompletionDecision>> JobTracker::poll() {
  const JobTime now = clock_->now();
  std::vector<CompletionDecision> decisions;

  // Stale decisions first, so a watermark decided below is not offered twice in one poll.
  SEGMENTOR_ASSIGN_OR_RETURN(auto unpublished,
                             store_->claim_unpublished_completions(now, options_.republish_after));
  for (const auto& [key, progress] : unpublished) decisions.push_back(decision_for(key, progress));

  SEGMENTOR_ASSIGN_OR_RETURN(auto open, store_->list_open_jobs());
  for (const auto& entry : open) {
    const JobKey& key = entry.first;  // not a structured binding: the lambda below captures it
    const JobProgress& listed = entry.second;
    if (!listed.started_at.has_value() || now < *listed.started_at + options_.batch_timeout) {
      continue;
    }
    // Decide under the store's lock: an asset may have completed the job since the listing.
    std::optional<CompletionDecision> decision;
    auto body = [&](JobProgress& progress, JobTransaction&) -> Status {
      decision = maybe_complete(key, progress, now);
      return Status::Ok();
    };
    SEGMENTOR_RETURN_IF_ERROR(store_->transact(key, body));
    if (decision.has_value()) decisions.push_back(std::move(*decision));
  }
  return decisions;
}

Result<std::vector<CompletionDecision>> JobTracker::unpublished_completions() {
  SEGMENTOR_ASSIGN_OR_RETURN(auto unpublished, store_->claim_unpublished_completions(
                                                   clock_->now(), options_.republish_after));
  std::vector<CompletionDecision> decisions;
  decisions.reserve(unpublished.size());
  for (const auto& [key, progress] : unpublished) decisions.push_back(decision_for(key, progress));
  return decisions;
}

Status JobTracker::acknowledge_completion(const JobKey& key) {
  return store_->transact(key, [&](JobProgress& progress, JobTransaction&) -> Status {
    if (!progress.completed()) {
      return invalid_argument("acknowledged a completion of " + to_string(key) +
                              " that was never decided");
    }
    progress.completion_published = true;
    return Status::Ok();
  });
}

Result<std::optional<JobProgress>> JobTracker::progress(const JobKey& key) {
  return store_->load(key);
}

}  // namespace segmentor
