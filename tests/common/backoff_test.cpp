#include "common/backoff.h"

#include <gtest/gtest.h>

namespace segmentor {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, DoublesFromTheFirstWaitUpToTheCap) {
  Backoff backoff(milliseconds(250), milliseconds(1000));
  EXPECT_EQ(backoff.next(), milliseconds(250));
  EXPECT_EQ(backoff.next(), milliseconds(500));
  EXPECT_EQ(backoff.next(), milliseconds(1000));
  EXPECT_EQ(backoff.next(), milliseconds(1000));
}

TEST(BackoffTest, ACapBelowTheFirstWaitIsRaisedToIt) {
  Backoff backoff(milliseconds(300), milliseconds(100));
  EXPECT_EQ(backoff.next(), milliseconds(300));
  EXPECT_EQ(backoff.next(), milliseconds(300));
}

}  // namespace
}  // namespace segmentor
