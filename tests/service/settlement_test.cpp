// Note [One settle point]: the whole ack / retry / dead-letter / leave policy, one table.
#include "service/settlement.h"

#include <gtest/gtest.h>

namespace segmentor::service {
namespace {

const messaging::RetryPolicy kRetry{3, std::chrono::milliseconds(1000)};

Settlement settle(const Outcome& outcome, std::int64_t retry_count = 0,
                  bool shutting_down = false) {
  return decide(outcome, retry_count, kRetry, shutting_down);
}

TEST(Settlement, DoneIsAcked) {
  EXPECT_EQ(settle(Outcome::Done()), Settlement::kAck);
  EXPECT_EQ(settle(Outcome::Done(), 0, true), Settlement::kAck);
}

TEST(Settlement, MalformedAndPermanentFailuresAreDeadLettered) {
  EXPECT_EQ(settle(Outcome::Malformed(invalid_argument("bad json"))), Settlement::kDeadLetter);
  EXPECT_EQ(settle(Outcome::Failed(not_found("gone.jpg"), kProcessingError)),
            Settlement::kDeadLetter);
  EXPECT_EQ(settle(Outcome::Failed(too_large("huge"), kProcessingError)), Settlement::kDeadLetter);
  // Even while shutting down: nothing would change on redelivery.
  EXPECT_EQ(settle(Outcome::Failed(invalid_argument("x"), kInvalidInput), 0, true),
            Settlement::kDeadLetter);
}

TEST(Settlement, TransientFailuresAreRetriedUntilTheRetriesRunOut) {
  const Outcome io = Outcome::Failed(io_error("EIO"), kTransientError);
  EXPECT_TRUE(io.transient);
  EXPECT_EQ(settle(io, 0), Settlement::kRetry);
  EXPECT_EQ(settle(io, 2), Settlement::kRetry);
  EXPECT_EQ(settle(io, 3), Settlement::kDeadLetter);
}

// Issue 11, item 2: a database error that is not an outage (statement timeout, disk full) must
// still end in a retry or the dead-letter queue, never in nothing.
TEST(Settlement, DatabaseErrorsAlwaysSettle) {
  const Outcome internal = Outcome::Failed(internal_error("statement timeout"), kDatabaseError);
  EXPECT_EQ(settle(internal, 0), Settlement::kRetry);
  EXPECT_EQ(settle(internal, 3), Settlement::kDeadLetter);
  const Outcome refused = Outcome::Failed(invalid_argument("empty job id"), kDatabaseError);
  EXPECT_EQ(settle(refused, 0), Settlement::kDeadLetter);
}

TEST(Settlement, TransientFailuresAreLeftToTheBrokerDuringShutdown) {
  EXPECT_EQ(settle(Outcome::Failed(unavailable("database down"), kDatabaseError), 0, true),
            Settlement::kLeave);
  EXPECT_EQ(settle(Outcome::Failed(io_error("EIO"), kTransientError), 3, true), Settlement::kLeave);
}

TEST(Settlement, TransientFlagCanBeOverridden) {
  // A task that threw reports kInternal but is marked permanent by its handler.
  Outcome threw = Outcome::Failed(internal_error("task threw"), kProcessingError);
  threw.transient = false;
  EXPECT_EQ(settle(threw), Settlement::kDeadLetter);
}

}  // namespace
}  // namespace segmentor::service
