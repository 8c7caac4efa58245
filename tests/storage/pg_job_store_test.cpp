#include "storage/pg_job_store.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>
#include <vector>

#include "jobs/job_tracker.h"
#include "test_database.h"

namespace segmentor {
namespace {

using std::chrono::seconds;
using testing::sql;
using testing::sql_literal;
using testing::unique_name;

AssetRecord done(const std::string& id) {
  return {id, AssetOutcome::kDone, "/masks/" + id + ".png"};
}
AssetRecord failed(const std::string& id) { return {id, AssetOutcome::kFailed, ""}; }

// One worker: a connection, the store on it and a tracker.
struct Worker {
  std::unique_ptr<PostgresDatabase> db;
  std::unique_ptr<PgJobStore> store;
  std::unique_ptr<JobTracker> tracker;
};

Worker start_worker(const Clock* clock, JobTrackerOptions options = {}) {
  Worker worker;
  worker.db = testing::connect();
  if (worker.db == nullptr) return worker;
  auto store = PgJobStore::create(worker.db.get());
  EXPECT_TRUE(store.ok()) << store.status().to_string();
  if (!store.ok()) return worker;
  worker.store = std::move(store).value();
  auto tracker = JobTracker::create(options, worker.store.get(), clock);
  EXPECT_TRUE(tracker.ok()) << tracker.status().to_string();
  if (tracker.ok()) worker.tracker = std::move(tracker).value();
  return worker;
}

class PgJobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    worker_ = start_worker(&clock_);
    ASSERT_NE(worker_.tracker, nullptr);
    key_ = JobKey{unique_name("job"), AssetKind::kProductImage};
  }

  ManualClock clock_;
  Worker worker_;
  JobKey key_;
};

TEST_F(PgJobStoreTest, CreatingTheTablesTwiceIsHarmless) {
  auto again = PgJobStore::create(worker_.db.get());
  EXPECT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(sql("SELECT count(*) FROM information_schema.tables WHERE table_name IN "
                "('segmentor_job_progress', 'segmentor_processed_assets')"),
            "2");
}

// Issue 11, item 9: the worker's tables do not grow for ever.
TEST_F(PgJobStoreTest, PublishedJobsOlderThanTheRetentionAreRemovedAtStartUp) {
  const std::string old_job = unique_name("old-job");
  const std::string recent_job = unique_name("recent-job");
  for (const auto& [job, age] : {std::pair{old_job, "31 days"}, std::pair{recent_job, "1 day"}}) {
    sql("INSERT INTO segmentor_job_progress (job_id, asset_type, expected, done, completed_at, "
        "completion_reason, completion_published) VALUES (" +
        sql_literal(job) + ", 'image', 1, 1, now() - interval '" + age +
        "', 'all_accounted', TRUE)");
    sql("INSERT INTO segmentor_processed_assets (job_id, asset_type, asset_id, outcome, at) "
        "VALUES (" +
        sql_literal(job) + ", 'image', 'a', 'done', now())");
  }
  ASSERT_TRUE(PgJobStore::create(worker_.db.get()).ok());
  auto count = [](const std::string& table, const std::string& job) {
    return sql("SELECT count(*) FROM " + table + " WHERE job_id = " + sql_literal(job));
  };
  EXPECT_EQ(count("segmentor_job_progress", old_job), "0");
  EXPECT_EQ(count("segmentor_processed_assets", old_job), "0");
  EXPECT_EQ(count("segmentor_job_progress", recent_job), "1");
  EXPECT_EQ(count("segmentor_processed_assets", recent_job), "1");
}

TEST_F(PgJobStoreTest, CompletionRulesRunOnPostgres) {
  JobTracker& tracker = *worker_.tracker;
  ASSERT_TRUE(tracker.record_batch(key_, "batch-1", 3).ok());
  auto first = tracker.record_assets(key_, {done("a"), failed("b")});
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(first->counted, 2);
  EXPECT_FALSE(first->completion.has_value());
  auto last = tracker.record_asset(key_, done("c"));
  ASSERT_TRUE(last.ok());
  ASSERT_TRUE(last->completion.has_value());
  EXPECT_EQ(last->completion->reason, CompletionReason::kAllAccounted);
  EXPECT_EQ(last->completion->processed_assets, 2);
  EXPECT_EQ(last->completion->failed_assets, 1);
  EXPECT_EQ(last->completion->masked_batch_total, 2);
  EXPECT_EQ(sql("SELECT completion_reason FROM segmentor_job_progress WHERE job_id = " +
                sql_literal(key_.job_id)),
            "all_accounted");
}

TEST_F(PgJobStoreTest, ProgressSurvivesANewConnection) {
  ASSERT_TRUE(worker_.tracker->record_batch(key_, "batch-1", 5).ok());
  const JobTime batch_time = clock_.now();
  ASSERT_TRUE(worker_.tracker->record_assets(key_, {done("a"), done("b"), failed("c")}).ok());
  const JobKey video{key_.job_id, AssetKind::kVideoFrame};
  ASSERT_TRUE(worker_.tracker->record_asset(video, done("f1")).ok());
  worker_ = Worker{};  // the worker stops: connection closed

  clock_.advance(seconds(100));
  Worker restarted = start_worker(&clock_);
  ASSERT_NE(restarted.tracker, nullptr);
  auto loaded = restarted.tracker->progress(key_);
  ASSERT_TRUE(loaded.ok() && loaded->has_value()) << loaded.status().to_string();
  const JobProgress& p = **loaded;
  EXPECT_EQ(p.expected, 5);
  EXPECT_EQ(p.done, 2);
  EXPECT_EQ(p.failed, 1);
  EXPECT_EQ(p.batch_event_id, "batch-1");
  EXPECT_EQ(p.started_at, batch_time) << "the watermark start did not survive exactly";
  EXPECT_FALSE(p.completed());

  auto video_progress = restarted.tracker->progress(video);
  ASSERT_TRUE(video_progress.ok() && video_progress->has_value());
  EXPECT_FALSE((*video_progress)->expected.has_value());
  EXPECT_EQ((*video_progress)->done, 1);

  // Redeliveries after the restart are recognised; the duplicate .batch too.
  auto redelivered = restarted.tracker->record_asset(key_, done("a"));
  ASSERT_TRUE(redelivered.ok());
  EXPECT_EQ(redelivered->duplicates, 1);
  auto batch_again = restarted.tracker->record_batch(key_, "batch-1", 5);
  ASSERT_TRUE(batch_again.ok());
  EXPECT_EQ(batch_again->disposition, BatchDisposition::kDuplicate);

  // The watermark still counts from the original .batch.
  clock_.advance(seconds(1700));
  auto fired = restarted.tracker->poll();
  ASSERT_TRUE(fired.ok()) << fired.status().to_string();
  // Other tests' unacknowledged completions in this database may come back too; look at ours.
  std::vector<CompletionDecision> ours;
  for (const auto& decision : *fired) {
    if (decision.key.job_id == key_.job_id) ours.push_back(decision);
  }
  ASSERT_EQ(ours.size(), 1u) << "the video side (no .batch) must not complete";
  EXPECT_EQ(ours[0].key, key_);
  EXPECT_EQ(ours[0].reason, CompletionReason::kWatermark);
  EXPECT_EQ(ours[0].processed_assets, 2);
}

TEST_F(PgJobStoreTest, UnpublishedCompletionSurvivesARestartUntilAcknowledged) {
  ASSERT_TRUE(worker_.tracker->record_batch(key_, "batch-1", 1).ok());
  auto update = worker_.tracker->record_asset(key_, done("only"));
  ASSERT_TRUE(update.ok() && update->completion.has_value());
  const CompletionDecision decided = *update->completion;
  worker_ = Worker{};  // crashed before publishing

  Worker restarted = start_worker(&clock_);
  ASSERT_NE(restarted.tracker, nullptr);
  auto pending = restarted.tracker->unpublished_completions();
  ASSERT_TRUE(pending.ok()) << pending.status().to_string();
  for (const auto& decision : *pending) {
    EXPECT_NE(decision.key, key_) << "offered while the decider's claim still held";
  }
  clock_.advance(seconds(61));  // Note [Completion claims]: the decider's claim ran out
  pending = restarted.tracker->unpublished_completions();
  ASSERT_TRUE(pending.ok()) << pending.status().to_string();
  bool found = false;
  for (const auto& decision : *pending) {
    if (decision.key == key_) {
      EXPECT_EQ(decision, decided);
      found = true;
    }
  }
  EXPECT_TRUE(found);
  ASSERT_TRUE(restarted.tracker->acknowledge_completion(key_).ok());
  pending = restarted.tracker->unpublished_completions();
  ASSERT_TRUE(pending.ok());
  for (const auto& decision : *pending) EXPECT_NE(decision.key, key_);
}

// Issue 11, item 1: replicas restarting together (or polling together) on one database claim
// a decided, unpublished completion once between them.
TEST_F(PgJobStoreTest, ConcurrentReplicasClaimACompletionOnce) {
  ASSERT_TRUE(worker_.tracker->record_batch(key_, "batch-1", 1).ok());
  auto update = worker_.tracker->record_asset(key_, done("only"));
  ASSERT_TRUE(update.ok() && update->completion.has_value());
  worker_ = Worker{};  // the decider died before publishing
  clock_.advance(seconds(61));

  constexpr int kReplicas = 4;
  std::vector<Worker> replicas;
  for (int i = 0; i < kReplicas; ++i) {
    replicas.push_back(start_worker(&clock_));
    ASSERT_NE(replicas.back().tracker, nullptr);
  }
  std::mutex mutex;
  int offered = 0;
  std::vector<std::thread> threads;
  for (int i = 0; i < kReplicas; ++i) {
    threads.emplace_back([&, i] {
      JobTracker& tracker = *replicas[static_cast<std::size_t>(i)].tracker;
      for (int round = 0; round < 3; ++round) {
        auto got = round == 0 ? tracker.unpublished_completions() : tracker.poll();
        ASSERT_TRUE(got.ok()) << got.status().to_string();
        std::lock_guard lock(mutex);
        for (const auto& decision : *got) offered += decision.key == key_ ? 1 : 0;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(offered, 1);
}

TEST_F(PgJobStoreTest, AssetIsRecordedOnceWithItsMaskPath) {
  ASSERT_TRUE(worker_.tracker->record_asset(key_, done("a")).ok());
  auto again = worker_.tracker->record_asset(key_, done("a"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->counted, 0);
  EXPECT_EQ(again->duplicates, 1);
  EXPECT_EQ(sql("SELECT count(*) FROM segmentor_processed_assets WHERE job_id = " +
                sql_literal(key_.job_id)),
            "1");
  EXPECT_EQ(
      sql("SELECT done FROM segmentor_job_progress WHERE job_id = " + sql_literal(key_.job_id)),
      "1");
  auto path = worker_.store->recorded_mask_path(key_, "a");
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(*path, "/masks/a.png");

  // A failure later done moves between the counters, still one row.
  ASSERT_TRUE(worker_.tracker->record_asset(key_, failed("b")).ok());
  ASSERT_TRUE(worker_.tracker->record_asset(key_, done("b")).ok());
  auto p = worker_.tracker->progress(key_);
  ASSERT_TRUE(p.ok() && p->has_value());
  EXPECT_EQ((*p)->done, 2);
  EXPECT_EQ((*p)->failed, 0);
  EXPECT_EQ(sql("SELECT outcome FROM segmentor_processed_assets WHERE job_id = " +
                sql_literal(key_.job_id) + " AND asset_id = 'b'"),
            "done");
}

TEST_F(PgJobStoreTest, FailedBodyLeavesNoTrace) {
  Status status = worker_.store->transact(key_, [](JobProgress& progress, JobTransaction& txn) {
    progress.done = 42;
    Status put = txn.put_asset(AssetRecord{"x", AssetOutcome::kDone, "/m/x.png"}, JobTime{});
    if (!put.ok()) return put;
    return internal_error("the body gave up");
  });
  EXPECT_EQ(status.code(), ErrorCode::kInternal);
  auto loaded = worker_.store->load(key_);
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->has_value());
  EXPECT_EQ(sql("SELECT count(*) FROM segmentor_processed_assets WHERE job_id = " +
                sql_literal(key_.job_id)),
            "0");
}

// Two workers (two connections) and several threads each race to finish one job: the row lock
// must let exactly one of them decide the completion.
TEST_F(PgJobStoreTest, TwoWorkersCompleteAJobExactlyOnce) {
  Worker second = start_worker(&clock_);
  ASSERT_NE(second.tracker, nullptr);
  JobTracker* trackers[] = {worker_.tracker.get(), second.tracker.get()};
  constexpr int kThreads = 4;
  constexpr int kAssetsPerThread = 15;

  std::mutex mutex;
  std::vector<CompletionDecision> decisions;
  std::vector<std::string> errors;
  auto keep = [&](const Status& status, const std::optional<CompletionDecision>& decision) {
    std::lock_guard lock(mutex);
    if (!status.ok()) errors.push_back(status.to_string());
    if (decision.has_value()) decisions.push_back(*decision);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      JobTracker& tracker = *trackers[t % 2];
      for (int i = 0; i < kAssetsPerThread; ++i) {
        // Every asset goes to both workers, as a redelivery would.
        const std::string id = "a" + std::to_string(t) + "-" + std::to_string(i);
        for (JobTracker* any : trackers) {
          auto update = any->record_asset(key_, done(id));
          keep(update.status(), update.ok() ? update->completion : std::nullopt);
        }
        if (i == 3) {
          auto batch = tracker.record_batch(key_, "batch", kThreads * kAssetsPerThread);
          keep(batch.status(), batch.ok() ? batch->completion : std::nullopt);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();

  EXPECT_TRUE(errors.empty()) << errors.front();
  ASSERT_EQ(decisions.size(), 1u);
  EXPECT_EQ(decisions[0].reason, CompletionReason::kThreshold);
  EXPECT_EQ(sql("SELECT count(*) FROM segmentor_processed_assets WHERE job_id = " +
                sql_literal(key_.job_id)),
            std::to_string(kThreads * kAssetsPerThread));
  EXPECT_EQ(
      sql("SELECT done FROM segmentor_job_progress WHERE job_id = " + sql_literal(key_.job_id)),
      std::to_string(decisions[0].processed_assets));
}

}  // namespace
}  // namespace segmentor
