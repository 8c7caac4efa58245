#include "common/periodic_thread.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace segmentor {
namespace {

TEST(PeriodicThreadTest, CallsRepeatedlyOnAnotherThread) {
  std::atomic<int> calls{0};
  std::atomic<bool> on_caller{false};
  const auto caller = std::this_thread::get_id();
  {
    PeriodicThread thread(
        [&] {
          if (std::this_thread::get_id() == caller) on_caller = true;
          ++calls;
        },
        std::chrono::milliseconds(2));
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (calls < 3 && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  EXPECT_GE(calls.load(), 3);
  EXPECT_FALSE(on_caller.load());
}

TEST(PeriodicThreadTest, StopsAtOnceAndNeverCallsBeforeTheFirstInterval) {
  std::atomic<int> calls{0};
  const auto start = std::chrono::steady_clock::now();
  { PeriodicThread thread([&] { ++calls; }, std::chrono::hours(1)); }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(calls.load(), 0);
}

}  // namespace
}  // namespace segmentor
