// Note [Counting redeliveries] and the database clock, against a real PostgreSQL.
#include "storage/delivery_log.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "storage/database_clock.h"
#include "test_database.h"

namespace segmentor {
namespace {

using testing::unique_name;

TEST(DeliveryLogTest, CountsRedeliveriesPerMessageAcrossConnections) {
  auto db = testing::connect();
  ASSERT_NE(db, nullptr);
  auto log = DeliveryLog::create(db.get());
  ASSERT_TRUE(log.ok()) << log.status().to_string();
  const std::string body = "{\"job_id\":\"" + unique_name("job") + "\"}";
  auto first = (*log)->note_redelivery("queue.products.image.ready", body);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(*first, 1);
  // Another replica (its own connection) sees the same message come back.
  auto other_db = testing::connect();
  auto other = DeliveryLog::create(other_db.get());
  ASSERT_TRUE(other.ok());
  auto second = (*other)->note_redelivery("queue.products.image.ready", body);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, 2);
  // Another body or another queue is another message.
  auto elsewhere = (*log)->note_redelivery("queue.videos.keyframes.ready", body);
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_EQ(*elsewhere, 1);
  auto changed = (*log)->note_redelivery("queue.products.image.ready", body + " ");
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(*changed, 1);
}

TEST(DeliveryLogTest, FingerprintIsStable) {
  // Replicas of different builds must agree: a fixed function, not std::hash.
  EXPECT_EQ(delivery_fingerprint("q", "body"), delivery_fingerprint("q", "body"));
  EXPECT_NE(delivery_fingerprint("q", "body"), delivery_fingerprint("qb", "ody"));
  EXPECT_EQ(delivery_fingerprint("", "").size(), 16u);
  EXPECT_EQ(delivery_fingerprint("", ""), "af63bd4c8601b7df");  // FNV-1a 64 of one NUL byte
}

TEST(DatabaseClockTest, FollowsTheDatabase) {
  auto db = testing::connect();
  ASSERT_NE(db, nullptr);
  DatabaseClock clock(db.get());
  ASSERT_TRUE(clock.refresh().ok());
  // Same host: the offset is the round trip's noise, well under a second.
  EXPECT_LT(std::llabs(clock.offset().count()), 1'000'000);
  const auto before = JobClock::now();
  const JobTime now = clock.now();
  EXPECT_LT(std::chrono::abs(now - before), std::chrono::seconds(1));
}

}  // namespace
}  // namespace segmentor
