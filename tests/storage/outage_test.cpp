// The database goes away (the server is stopped) and comes back on the same port with the same
// data: operations fail with kUnavailable meanwhile, recover afterwards, and nothing is lost.
#include <gtest/gtest.h>

#include <thread>

#include "jobs/job_tracker.h"
#include "storage/mask_path_store.h"
#include "storage/pg_job_store.h"
#include "test_database.h"

namespace segmentor {
namespace {

using std::chrono::milliseconds;
using testing::sql;
using testing::sql_literal;
using testing::TestPostgres;
using testing::unique_name;

class OutageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = testing::connect();
    ASSERT_NE(db_, nullptr);
    masks_ = std::make_unique<MaskPathStore>(db_.get());
    auto store = PgJobStore::create(db_.get());
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    store_ = std::move(store).value();
    auto tracker = JobTracker::create(JobTrackerOptions{}, store_.get(), &clock_);
    ASSERT_TRUE(tracker.ok());
    tracker_ = std::move(tracker).value();
    key_ = JobKey{unique_name("job"), AssetKind::kVideoFrame};
    frame_ = unique_name("frame");
    sql("INSERT INTO video_frames (frame_id, video_id, ts, local_path) VALUES (" +
        sql_literal(frame_) + ", 'v', 0.5, '/in/" + frame_ + ".jpg')");
  }

  void TearDown() override {
    // Never leave the server down for the next test.
    if (paused_) {
      EXPECT_TRUE(TestPostgres::instance().resume());
    }
  }

  void pause() {
    ASSERT_TRUE(TestPostgres::instance().pause());
    paused_ = true;
  }
  void resume() {
    ASSERT_TRUE(TestPostgres::instance().resume());
    paused_ = false;
  }

  ManualClock clock_;
  std::unique_ptr<PostgresDatabase> db_;
  std::unique_ptr<MaskPathStore> masks_;
  std::unique_ptr<PgJobStore> store_;
  std::unique_ptr<JobTracker> tracker_;
  JobKey key_;
  std::string frame_;
  bool paused_ = false;
};

TEST_F(OutageTest, OperationsReportUnavailableAndSucceedAfterTheRestart) {
  ASSERT_TRUE(tracker_->record_batch(key_, "batch-1", 3).ok());
  ASSERT_TRUE(
      tracker_->record_asset(key_, AssetRecord{"f-before", AssetOutcome::kDone, "/m/b.png"}).ok());

  pause();
  const std::string path = "/m/" + frame_ + ".png";
  auto update = masks_->set_frame_mask(frame_, path);
  EXPECT_EQ(update.status().code(), ErrorCode::kUnavailable) << update.status().to_string();
  auto recorded = tracker_->record_asset(key_, AssetRecord{frame_, AssetOutcome::kDone, path});
  EXPECT_EQ(recorded.status().code(), ErrorCode::kUnavailable);
  EXPECT_EQ(tracker_->poll().status().code(), ErrorCode::kUnavailable);
  EXPECT_GE(db_->retries(), 2);

  resume();
  // The same connection object recovers: the worker retries the message.
  update = masks_->set_frame_mask(frame_, path);
  ASSERT_TRUE(update.ok()) << update.status().to_string();
  EXPECT_TRUE(update->row_matched);
  recorded = tracker_->record_asset(key_, AssetRecord{frame_, AssetOutcome::kDone, path});
  ASSERT_TRUE(recorded.ok()) << recorded.status().to_string();
  EXPECT_EQ(recorded->counted, 1) << "the failed attempt must not have counted the frame";
  EXPECT_GE(db_->reconnects(), 1);

  // Nothing written before the outage was lost.
  EXPECT_EQ(
      sql("SELECT masked_local_path FROM video_frames WHERE frame_id = " + sql_literal(frame_)),
      path);
  auto progress = tracker_->progress(key_);
  ASSERT_TRUE(progress.ok() && progress->has_value());
  EXPECT_EQ((*progress)->expected, 3);
  EXPECT_EQ((*progress)->done, 2);
  EXPECT_EQ((*progress)->batch_event_id, "batch-1");
}

TEST_F(OutageTest, RetriesRideOutAShortOutage) {
  PostgresOptions patient = testing::fast_options();
  patient.max_attempts = 100;
  patient.initial_backoff = milliseconds(50);
  patient.max_backoff = milliseconds(200);
  auto db = testing::connect(patient);
  ASSERT_NE(db, nullptr);
  MaskPathStore masks(db.get());

  pause();
  std::thread restarter([this] {
    std::this_thread::sleep_for(milliseconds(1500));
    resume();
  });
  const std::string path = "/m/" + frame_ + "-patient.png";
  auto update = masks.set_frame_mask(frame_, path);
  restarter.join();
  ASSERT_TRUE(update.ok()) << update.status().to_string();
  EXPECT_TRUE(update->row_matched);
  EXPECT_GE(db->retries(), 1);
  EXPECT_EQ(
      sql("SELECT masked_local_path FROM video_frames WHERE frame_id = " + sql_literal(frame_)),
      path);
}

TEST_F(OutageTest, CreateFailsWithUnavailableWhenTheServerIsDown) {
  pause();
  auto db = PostgresDatabase::create(testing::fast_options());
  EXPECT_EQ(db.status().code(), ErrorCode::kUnavailable) << db.status().to_string();
  EXPECT_EQ(db.status().message().find("password"), std::string::npos)
      << "an error message leaked the DSN: " << db.status().message();
}

}  // namespace
}  // namespace segmentor
