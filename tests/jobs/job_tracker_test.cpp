#include "jobs/job_tracker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "jobs/in_memory_job_store.h"

namespace segmentor {
namespace {

using std::chrono::seconds;

const JobKey kImages{"job-1", AssetKind::kProductImage};
const JobKey kVideos{"job-1", AssetKind::kVideoFrame};

AssetRecord done(const std::string& id) {
  return {id, AssetOutcome::kDone, "/masks/" + id + ".png"};
}
AssetRecord failed(const std::string& id) { return {id, AssetOutcome::kFailed, ""}; }

class JobTrackerTest : public ::testing::Test {
 protected:
  void SetUp() override { make_tracker(JobTrackerOptions{}); }

  void make_tracker(const JobTrackerOptions& options) {
    auto created = JobTracker::create(options, &store_, &clock_);
    ASSERT_TRUE(created.ok()) << created.status().to_string();
    tracker_ = std::move(created).value();
  }

  BatchUpdate batch(const JobKey& key, const std::string& event_id, std::int64_t total) {
    auto update = tracker_->record_batch(key, event_id, total);
    EXPECT_TRUE(update.ok()) << update.status().to_string();
    return update.ok() ? *update : BatchUpdate{};
  }

  AssetUpdate record(const JobKey& key, const AssetRecord& asset) {
    auto update = tracker_->record_asset(key, asset);
    EXPECT_TRUE(update.ok()) << update.status().to_string();
    return update.ok() ? *update : AssetUpdate{};
  }

  // Records done assets "<prefix>0".."<prefix>(n-1)"; none of them may complete the job.
  void record_done_without_completion(const JobKey& key, const std::string& prefix, int n) {
    for (int i = 0; i < n; ++i) {
      const AssetUpdate update = record(key, done(prefix + std::to_string(i)));
      ASSERT_EQ(update.counted, 1);
      ASSERT_FALSE(update.completion.has_value()) << "completed after " << i + 1 << " assets";
    }
  }

  std::vector<CompletionDecision> poll() {
    auto decisions = tracker_->poll();
    EXPECT_TRUE(decisions.ok()) << decisions.status().to_string();
    return decisions.ok() ? *decisions : std::vector<CompletionDecision>{};
  }

  JobProgress progress(const JobKey& key) {
    auto loaded = tracker_->progress(key);
    EXPECT_TRUE(loaded.ok() && loaded->has_value());
    return loaded.ok() && loaded->has_value() ? **loaded : JobProgress{};
  }

  InMemoryJobStore store_;
  ManualClock clock_;
  std::unique_ptr<JobTracker> tracker_;
};

TEST_F(JobTrackerTest, CompletesWhenEveryAssetIsAccountedFor) {
  batch(kImages, "batch-1", 3);
  record_done_without_completion(kImages, "img", 2);
  const AssetUpdate last = record(kImages, failed("img-bad"));
  ASSERT_TRUE(last.completion.has_value());
  const CompletionDecision& d = *last.completion;
  EXPECT_EQ(d.key, kImages);
  EXPECT_EQ(d.reason, CompletionReason::kAllAccounted);
  EXPECT_EQ(d.total_assets, 3);
  EXPECT_EQ(d.processed_assets, 2);
  EXPECT_EQ(d.failed_assets, 1);
  EXPECT_TRUE(d.has_partial_completion);
  EXPECT_EQ(d.watermark_ttl, 1800);
  EXPECT_TRUE(d.publish_completed_event);
  EXPECT_EQ(d.masked_batch_total, 2);
  EXPECT_TRUE(progress(kImages).completed());
}

TEST_F(JobTrackerTest, FullSuccessIsNotPartial) {
  batch(kVideos, "batch-1", 2);
  record_done_without_completion(kVideos, "frame", 1);
  const AssetUpdate last = record(kVideos, done("frame-last"));
  ASSERT_TRUE(last.completion.has_value());
  EXPECT_FALSE(last.completion->has_partial_completion);
  EXPECT_EQ(last.completion->masked_batch_total, 2);
  EXPECT_EQ(last.completion->failed_assets, 0);
}

TEST_F(JobTrackerTest, CompletesAtNinetyPercentDone) {
  batch(kImages, "batch-1", 10);
  record_done_without_completion(kImages, "img", 8);
  const AssetUpdate ninth = record(kImages, done("img-9"));
  ASSERT_TRUE(ninth.completion.has_value());
  EXPECT_EQ(ninth.completion->reason, CompletionReason::kThreshold);
  EXPECT_EQ(ninth.completion->total_assets, 10);
  EXPECT_EQ(ninth.completion->processed_assets, 9);
  EXPECT_TRUE(ninth.completion->has_partial_completion);
  EXPECT_EQ(ninth.completion->masked_batch_total, 9);
}

TEST_F(JobTrackerTest, FailuresCountTowardsAccountedButNotTowardsThreshold) {
  batch(kImages, "batch-1", 10);
  record_done_without_completion(kImages, "img", 8);
  // 8 done + 1 failed: 9 accounted of 10, but only 80 % done.
  const AssetUpdate first_failure = record(kImages, failed("bad-1"));
  EXPECT_EQ(first_failure.counted, 1);
  EXPECT_FALSE(first_failure.completion.has_value());
  const AssetUpdate second_failure = record(kImages, failed("bad-2"));
  ASSERT_TRUE(second_failure.completion.has_value());
  EXPECT_EQ(second_failure.completion->reason, CompletionReason::kAllAccounted);
  EXPECT_EQ(second_failure.completion->processed_assets, 8);
  EXPECT_EQ(second_failure.completion->failed_assets, 2);
  EXPECT_EQ(second_failure.completion->masked_batch_total, 8);
}

TEST_F(JobTrackerTest, ThresholdIsConfigurable) {
  JobTrackerOptions options;
  options.completion_threshold_percentage = 50.0;
  make_tracker(options);
  batch(kImages, "batch-1", 4);
  record_done_without_completion(kImages, "img", 1);
  const AssetUpdate second = record(kImages, done("img-2"));
  ASSERT_TRUE(second.completion.has_value());
  EXPECT_EQ(second.completion->reason, CompletionReason::kThreshold);
}

TEST_F(JobTrackerTest, WatermarkIsPerAssetType) {
  batch(kImages, "batch-img", 5);
  clock_.advance(seconds(600));
  batch(kVideos, "batch-vid", 5);
  record_done_without_completion(kImages, "img", 1);
  record_done_without_completion(kVideos, "frame", 1);

  clock_.advance(seconds(1199));
  EXPECT_TRUE(poll().empty()) << "the image timer fired a second early";
  clock_.advance(seconds(1));
  const auto image_side = poll();
  ASSERT_EQ(image_side.size(), 1u);
  EXPECT_EQ(image_side[0].key, kImages);
  EXPECT_EQ(image_side[0].reason, CompletionReason::kWatermark);
  EXPECT_EQ(image_side[0].total_assets, 5);
  EXPECT_EQ(image_side[0].processed_assets, 1);
  EXPECT_TRUE(image_side[0].has_partial_completion);
  EXPECT_FALSE(progress(kVideos).completed()) << "the image timer completed the video side";
  ASSERT_TRUE(tracker_->acknowledge_completion(kImages).ok());

  clock_.advance(seconds(600));
  const auto video_side = poll();
  ASSERT_EQ(video_side.size(), 1u);
  EXPECT_EQ(video_side[0].key, kVideos);
  EXPECT_EQ(video_side[0].reason, CompletionReason::kWatermark);
}

TEST_F(JobTrackerTest, WatermarkIsPerJob) {
  const JobKey other{"job-2", AssetKind::kProductImage};
  batch(kImages, "b1", 3);
  clock_.advance(seconds(1000));
  batch(other, "b2", 3);
  clock_.advance(seconds(800));
  const auto fired = poll();
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].key, kImages);
  EXPECT_FALSE(progress(other).completed());
}

TEST_F(JobTrackerTest, WatermarkIsCheckedWhenAnAssetArrivesLate) {
  batch(kImages, "batch-1", 10);
  clock_.advance(seconds(1800));
  const AssetUpdate update = record(kImages, done("img-1"));
  ASSERT_TRUE(update.completion.has_value());
  EXPECT_EQ(update.completion->reason, CompletionReason::kWatermark);
  EXPECT_EQ(update.completion->processed_assets, 1);
  EXPECT_TRUE(poll().empty()) << "completed twice";
}

TEST_F(JobTrackerTest, NeverCompletesBeforeTheBatchEvent) {
  record_done_without_completion(kImages, "img", 50);
  record(kImages, failed("bad"));
  clock_.advance(seconds(10 * 1800));
  EXPECT_TRUE(poll().empty());
  const JobProgress p = progress(kImages);
  EXPECT_FALSE(p.completed());
  EXPECT_FALSE(p.expected.has_value());
  EXPECT_EQ(p.done, 50);
  EXPECT_EQ(p.failed, 1);
}

TEST_F(JobTrackerTest, BatchAfterAllAssetsCompletesAtOnce) {
  record_done_without_completion(kImages, "img", 3);
  const BatchUpdate update = batch(kImages, "batch-1", 3);
  EXPECT_EQ(update.disposition, BatchDisposition::kApplied);
  ASSERT_TRUE(update.completion.has_value());
  EXPECT_EQ(update.completion->reason, CompletionReason::kAllAccounted);
  EXPECT_EQ(update.completion->masked_batch_total, 3);
  EXPECT_FALSE(update.completion->has_partial_completion);
}

TEST_F(JobTrackerTest, BatchBetweenAssets) {
  record_done_without_completion(kImages, "img", 2);
  EXPECT_FALSE(batch(kImages, "batch-1", 3).completion.has_value());
  const AssetUpdate last = record(kImages, done("img-last"));
  ASSERT_TRUE(last.completion.has_value());
  EXPECT_EQ(last.completion->processed_assets, 3);
}

TEST_F(JobTrackerTest, WatermarkStartsAtTheBatchNotAtTheFirstAsset) {
  record_done_without_completion(kImages, "img", 1);
  clock_.advance(seconds(5000));
  EXPECT_FALSE(batch(kImages, "batch-1", 10).completion.has_value());
  clock_.advance(seconds(1799));
  EXPECT_TRUE(poll().empty());
  clock_.advance(seconds(1));
  EXPECT_EQ(poll().size(), 1u);
}

TEST_F(JobTrackerTest, ZeroAssetBatchCompletesAtOnceWithoutCompletedEvent) {
  const BatchUpdate update = batch(kVideos, "batch-0", 0);
  ASSERT_TRUE(update.completion.has_value());
  const CompletionDecision& d = *update.completion;
  EXPECT_EQ(d.reason, CompletionReason::kZeroAssets);
  EXPECT_FALSE(d.publish_completed_event);
  EXPECT_EQ(d.masked_batch_total, 0);
  EXPECT_EQ(d.total_assets, 0);
  EXPECT_FALSE(d.has_partial_completion);
  // Only once: a redelivered .batch and the timer add nothing.
  EXPECT_EQ(batch(kVideos, "batch-0", 0).disposition, BatchDisposition::kDuplicate);
  clock_.advance(seconds(4000));
  ASSERT_TRUE(tracker_->acknowledge_completion(kVideos).ok());
  EXPECT_TRUE(poll().empty());
}

TEST_F(JobTrackerTest, DuplicateBatchIsIgnored) {
  EXPECT_EQ(batch(kImages, "batch-1", 4).disposition, BatchDisposition::kApplied);
  clock_.advance(seconds(1000));
  const BatchUpdate again = batch(kImages, "batch-1", 4);
  EXPECT_EQ(again.disposition, BatchDisposition::kDuplicate);
  EXPECT_FALSE(again.completion.has_value());
  const BatchUpdate other = batch(kImages, "batch-2", 2);
  EXPECT_EQ(other.disposition, BatchDisposition::kConflicting);
  EXPECT_EQ(progress(kImages).expected, 4) << "a second .batch changed the expected count";
  EXPECT_EQ(progress(kImages).batch_event_id, "batch-1");
  // The timer still runs from the first .batch.
  clock_.advance(seconds(800));
  EXPECT_EQ(poll().size(), 1u);
}

TEST_F(JobTrackerTest, DuplicateBatchAfterCompletionDoesNotCompleteAgain) {
  batch(kImages, "batch-1", 1);
  ASSERT_TRUE(record(kImages, done("img")).completion.has_value());
  const BatchUpdate again = batch(kImages, "batch-1", 1);
  EXPECT_EQ(again.disposition, BatchDisposition::kDuplicate);
  EXPECT_FALSE(again.completion.has_value());
}

TEST_F(JobTrackerTest, RedeliveredAssetIsCountedOnce) {
  batch(kImages, "batch-1", 5);
  EXPECT_EQ(record(kImages, done("a")).counted, 1);
  const AssetUpdate again = record(kImages, done("a"));
  EXPECT_EQ(again.counted, 0);
  EXPECT_EQ(again.duplicates, 1);
  // A success redelivered and then failing (e.g. the DB row write failed the second time) stays
  // a success.
  EXPECT_EQ(record(kImages, failed("a")).duplicates, 1);
  EXPECT_EQ(record(kImages, failed("b")).counted, 1);
  EXPECT_EQ(record(kImages, failed("b")).duplicates, 1);
  const JobProgress p = progress(kImages);
  EXPECT_EQ(p.done, 1);
  EXPECT_EQ(p.failed, 1);
}

TEST_F(JobTrackerTest, FailureLaterDoneMovesToDone) {
  batch(kImages, "batch-1", 5);
  record(kImages, failed("a"));
  const AssetUpdate upgraded = record(kImages, done("a"));
  EXPECT_EQ(upgraded.counted, 1);
  const JobProgress p = progress(kImages);
  EXPECT_EQ(p.done, 1);
  EXPECT_EQ(p.failed, 0);
  EXPECT_EQ(store_.assets(kImages).at("a").outcome, AssetOutcome::kDone);
}

TEST_F(JobTrackerTest, FramesOfOneMessageAreRecordedTogetherAndOnce) {
  batch(kVideos, "batch-1", 4);
  auto update = tracker_->record_assets(kVideos, {done("f1"), done("f2"), done("f1")});
  ASSERT_TRUE(update.ok());
  EXPECT_EQ(update->counted, 2);
  EXPECT_EQ(update->duplicates, 1);
  EXPECT_EQ(progress(kVideos).done, 2);
  auto rest = tracker_->record_assets(kVideos, {done("f2"), done("f3"), failed("f4")});
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->counted, 2);
  ASSERT_TRUE(rest->completion.has_value());
  EXPECT_EQ(rest->completion->reason, CompletionReason::kAllAccounted);
  EXPECT_EQ(rest->completion->masked_batch_total, 3);
}

TEST_F(JobTrackerTest, AssetsAfterCompletionAreKeptButNotCounted) {
  batch(kImages, "batch-1", 10);
  record_done_without_completion(kImages, "img", 8);
  ASSERT_TRUE(record(kImages, done("img-9")).completion.has_value());
  const AssetUpdate straggler = record(kImages, done("img-10"));
  EXPECT_EQ(straggler.late, 1);
  EXPECT_EQ(straggler.counted, 0);
  EXPECT_FALSE(straggler.completion.has_value());
  EXPECT_EQ(progress(kImages).done, 9) << "counters must stay at the published figures";
  EXPECT_EQ(store_.assets(kImages).size(), 10u);
  // And it stays idempotent.
  EXPECT_EQ(record(kImages, done("img-10")).duplicates, 1);
}

TEST_F(JobTrackerTest, UnacknowledgedCompletionIsOfferedAgain) {
  batch(kImages, "batch-1", 1);
  const AssetUpdate update = record(kImages, done("img"));
  ASSERT_TRUE(update.completion.has_value());

  // The decider holds the claim: a replica starting now does not publish it too.
  auto pending = tracker_->unpublished_completions();
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty());

  EXPECT_TRUE(poll().empty()) << "re-offered before republish_after";
  clock_.advance(seconds(60));
  const auto again = poll();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0], *update.completion);

  EXPECT_TRUE(poll().empty()) << "claimed by the poll above";

  ASSERT_TRUE(tracker_->acknowledge_completion(kImages).ok());
  clock_.advance(seconds(600));
  EXPECT_TRUE(poll().empty());
  pending = tracker_->unpublished_completions();
  ASSERT_TRUE(pending.ok());
  EXPECT_TRUE(pending->empty());
}

// Issue 11, item 1: replicas on one store — every one starting up, or polling once the
// decider's claim has run out — must not each republish the completion.
TEST_F(JobTrackerTest, ReplicasClaimAnUnpublishedCompletionOnce) {
  auto second = JobTracker::create(JobTrackerOptions{}, &store_, &clock_);
  auto third = JobTracker::create(JobTrackerOptions{}, &store_, &clock_);
  ASSERT_TRUE(second.ok() && third.ok());
  batch(kImages, "batch-1", 1);
  ASSERT_TRUE(record(kImages, done("img")).completion.has_value());  // decided, never published

  clock_.advance(seconds(61));  // the decider died: its claim ran out
  int offered = 0;
  for (JobTracker* replica : {tracker_.get(), second->get(), third->get()}) {
    auto at_start = replica->unpublished_completions();
    ASSERT_TRUE(at_start.ok());
    offered += static_cast<int>(at_start->size());
    auto polled = replica->poll();
    ASSERT_TRUE(polled.ok());
    offered += static_cast<int>(polled->size());
  }
  EXPECT_EQ(offered, 1);
  clock_.advance(seconds(61));  // the one that claimed it died too
  auto polled = (*third)->poll();
  ASSERT_TRUE(polled.ok());
  EXPECT_EQ(polled->size(), 1u);
}

TEST_F(JobTrackerTest, AcknowledgingAnUndecidedCompletionFails) {
  EXPECT_EQ(tracker_->acknowledge_completion(kImages).code(), ErrorCode::kInvalidArgument);
  auto loaded = tracker_->progress(kImages);
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->has_value()) << "a failed acknowledgement left a record behind";
}

TEST_F(JobTrackerTest, ReplayedStoreTransactionCountsOnce) {
  batch(kImages, "batch-1", 2);
  store_.replay_next_transaction();
  const AssetUpdate first = record(kImages, done("a"));
  EXPECT_EQ(first.counted, 1);
  EXPECT_EQ(first.duplicates, 0);
  store_.replay_next_transaction();
  const AssetUpdate second = record(kImages, done("b"));
  EXPECT_EQ(second.counted, 1);
  ASSERT_TRUE(second.completion.has_value());
  EXPECT_EQ(progress(kImages).done, 2);
}

TEST_F(JobTrackerTest, ProgressSurvivesANewTracker) {
  batch(kImages, "batch-1", 3);
  record_done_without_completion(kImages, "img", 2);
  make_tracker(JobTrackerOptions{});  // a restarted worker over the same store
  EXPECT_EQ(record(kImages, done("img0")).duplicates, 1);
  EXPECT_TRUE(record(kImages, done("img-new")).completion.has_value());
}

TEST_F(JobTrackerTest, RejectsBadInput) {
  EXPECT_EQ(tracker_->record_batch(kImages, "e", -1).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(tracker_->record_batch(kImages, "", 3).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(tracker_->record_batch(JobKey{"", AssetKind::kProductImage}, "e", 3).status().code(),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(tracker_->record_asset(kImages, done("")).status().code(), ErrorCode::kInvalidArgument);

  for (double bad : {0.0, -5.0, 100.5}) {
    JobTrackerOptions options;
    options.completion_threshold_percentage = bad;
    EXPECT_FALSE(JobTracker::create(options, &store_, &clock_).ok()) << bad;
  }
  JobTrackerOptions no_timeout;
  no_timeout.batch_timeout = seconds(0);
  EXPECT_FALSE(JobTracker::create(no_timeout, &store_, &clock_).ok());
  EXPECT_FALSE(JobTracker::create(JobTrackerOptions{}, nullptr, &clock_).ok());
}

// Many threads race to finish one job (assets, redeliveries, duplicate .batch events and a poller
// after the watermark); exactly one call may return the completion.
TEST_F(JobTrackerTest, CompletesExactlyOnceUnderConcurrentCalls) {
  constexpr int kThreads = 8;
  constexpr int kAssetsPerThread = 40;
  constexpr int kRounds = 20;
  JobTrackerOptions options;
  options.republish_after = seconds(1000 * 1800);  // only first-time decisions count here
  make_tracker(options);
  for (int round = 0; round < kRounds; ++round) {
    const JobKey key{"race-" + std::to_string(round), AssetKind::kProductImage};
    std::mutex decisions_mutex;
    std::vector<CompletionDecision> decisions;
    std::atomic<int> errors{0};
    auto keep = [&](const std::optional<CompletionDecision>& decision) {
      if (!decision.has_value()) return;
      std::lock_guard lock(decisions_mutex);
      decisions.push_back(*decision);
    };

    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kAssetsPerThread; ++i) {
          const std::string id = "a" + std::to_string(t) + "-" + std::to_string(i);
          for (int copy = 0; copy < 2; ++copy) {  // every asset is delivered twice
            auto update = tracker_->record_asset(key, done(id));
            if (!update.ok())
              ++errors;
            else
              keep(update->completion);
          }
          if (i == kAssetsPerThread / 2) {
            auto update = tracker_->record_batch(key, "batch", kThreads * kAssetsPerThread);
            if (!update.ok())
              ++errors;
            else
              keep(update->completion);
          }
        }
      });
    }
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (i == 25) clock_.advance(seconds(1800));
        auto polled = tracker_->poll();
        if (!polled.ok()) {
          ++errors;
          continue;
        }
        for (const auto& decision : *polled) {
          if (decision.key == key) keep(decision);
        }
      }
    });
    for (auto& thread : threads) thread.join();

    EXPECT_EQ(errors.load(), 0);
    ASSERT_EQ(decisions.size(), 1u) << "round " << round;
    const JobProgress p = progress(key);
    EXPECT_TRUE(p.completed());
    EXPECT_EQ(decisions[0].processed_assets, p.done);
    EXPECT_EQ(decisions[0].masked_batch_total, p.done);
    EXPECT_EQ(store_.assets(key).size(), static_cast<std::size_t>(kThreads * kAssetsPerThread));
    ASSERT_TRUE(tracker_->acknowledge_completion(key).ok());
  }
}

}  // namespace
}  // namespace segmentor
