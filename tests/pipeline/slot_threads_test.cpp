#include "pipeline/slot_threads.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace segmentor {
namespace {

TEST(SlotThreadsTest, EachSlotAlwaysRunsOnItsOwnThread) {
  SlotThreads threads;
  std::map<int, std::set<std::thread::id>> seen;
  for (int round = 0; round < 5; ++round) {
    for (int slot : {0, 2, 1}) {
      threads.run(slot, [&] { seen[slot].insert(std::this_thread::get_id()); });
    }
  }
  ASSERT_EQ(seen.size(), 3u);
  std::set<std::thread::id> all;
  for (const auto& [slot, ids] : seen) {
    EXPECT_EQ(ids.size(), 1u) << "slot " << slot;
    all.insert(ids.begin(), ids.end());
  }
  EXPECT_EQ(all.size(), 3u);  // distinct per slot
  EXPECT_EQ(all.count(std::this_thread::get_id()), 0u);
  EXPECT_EQ(threads.threads_started(), 3);
}

TEST(SlotThreadsTest, RunWaitsForTheWorkAndRethrowsItsException) {
  SlotThreads threads;
  int value = 0;
  threads.run(0, [&] { value = 42; });
  EXPECT_EQ(value, 42);  // done before run() returned
  EXPECT_THROW(threads.run(0, [] { throw std::runtime_error("boom"); }), std::runtime_error);
  threads.run(0, [&] { value = 7; });  // the slot's thread survived the exception
  EXPECT_EQ(value, 7);
  EXPECT_THROW(threads.run(-1, [] {}), std::invalid_argument);
}

TEST(SlotThreadsTest, ConcurrentCallersOnDifferentSlotsOverlap) {
  SlotThreads threads;
  std::atomic<int> active{0};
  std::atomic<int> peak{0};
  std::vector<std::jthread> callers;
  for (int slot = 0; slot < 4; ++slot) {
    callers.emplace_back([&, slot] {
      threads.run(slot, [&] {
        const int now = ++active;
        int seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        // Wait (bounded) until every slot is in, proving they run at the same time.
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (peak.load() < 4 && std::chrono::steady_clock::now() < give_up) {
          std::this_thread::yield();
        }
        --active;
      });
    });
  }
  callers.clear();
  EXPECT_EQ(peak.load(), 4);
}

}  // namespace
}  // namespace segmentor
