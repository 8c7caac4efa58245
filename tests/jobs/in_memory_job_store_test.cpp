#include "jobs/in_memory_job_store.h"

#include <gtest/gtest.h>

namespace segmentor {
namespace {

const JobKey kKey{"job-1", AssetKind::kProductImage};

TEST(InMemoryJobStoreTest, FailedBodySavesNothing) {
  InMemoryJobStore store;
  Status st = store.transact(kKey, [](JobProgress& progress, JobTransaction& txn) -> Status {
    progress.done = 5;
    SEGMENTOR_RETURN_IF_ERROR(
        txn.put_asset(AssetRecord{"a", AssetOutcome::kDone, "/m/a.png"}, JobTime{}));
    return internal_error("body gave up");
  });
  EXPECT_EQ(st.code(), ErrorCode::kInternal);
  auto loaded = store.load(kKey);
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->has_value());
  EXPECT_TRUE(store.assets(kKey).empty());
}

TEST(InMemoryJobStoreTest, SuccessfulBodySavesProgressAndAssetsTogether) {
  InMemoryJobStore store;
  ASSERT_TRUE(
      store
          .transact(
              kKey,
              [](JobProgress& progress, JobTransaction& txn) -> Status {
                progress.done = 1;
                return txn.put_asset(AssetRecord{"a", AssetOutcome::kDone, "/m/a.png"}, JobTime{});
              })
          .ok());
  auto loaded = store.load(kKey);
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->done, 1);
  const auto assets = store.assets(kKey);
  ASSERT_EQ(assets.size(), 1u);
  EXPECT_EQ(assets.at("a").mask_path, "/m/a.png");
}

TEST(InMemoryJobStoreTest, TransactionSeesItsOwnPuts) {
  InMemoryJobStore store;
  std::optional<AssetOutcome> seen;
  ASSERT_TRUE(store
                  .transact(kKey,
                            [&](JobProgress&, JobTransaction& txn) -> Status {
                              SEGMENTOR_RETURN_IF_ERROR(txn.put_asset(
                                  AssetRecord{"a", AssetOutcome::kFailed, ""}, JobTime{}));
                              SEGMENTOR_ASSIGN_OR_RETURN(seen, txn.find_asset("a"));
                              return Status::Ok();
                            })
                  .ok());
  EXPECT_EQ(seen, AssetOutcome::kFailed);
}

TEST(InMemoryJobStoreTest, ListsOpenAndUnpublishedJobs) {
  InMemoryJobStore store;
  const JobKey open{"open", AssetKind::kProductImage};
  const JobKey unknown_size{"no-batch", AssetKind::kProductImage};
  const JobKey completed{"completed", AssetKind::kVideoFrame};
  const JobKey published{"published", AssetKind::kVideoFrame};
  auto set = [&](const JobKey& key, JobProgress value) {
    ASSERT_TRUE(store
                    .transact(key,
                              [&](JobProgress& progress, JobTransaction&) -> Status {
                                progress = value;
                                return Status::Ok();
                              })
                    .ok());
  };
  JobProgress p;
  p.expected = 3;
  set(open, p);
  set(unknown_size, JobProgress{});
  p.completed_at = JobTime{} + std::chrono::seconds(1);
  set(completed, p);
  p.completion_published = true;
  set(published, p);

  auto open_jobs = store.list_open_jobs();
  ASSERT_TRUE(open_jobs.ok());
  ASSERT_EQ(open_jobs->size(), 1u);
  EXPECT_EQ(open_jobs->front().first, open);

  const JobTime now = JobTime{} + std::chrono::seconds(10);
  auto unpublished = store.claim_unpublished_completions(now, std::chrono::seconds(60));
  ASSERT_TRUE(unpublished.ok());
  ASSERT_EQ(unpublished->size(), 1u);
  EXPECT_EQ(unpublished->front().first, completed);
  // Claimed: nobody else gets it until the lease ends.
  auto again = store.claim_unpublished_completions(now, std::chrono::seconds(60));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
  again =
      store.claim_unpublished_completions(now + std::chrono::seconds(60), std::chrono::seconds(60));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->size(), 1u);
}

}  // namespace
}  // namespace segmentor
