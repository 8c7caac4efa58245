// The batcher's rules on plain integers (Note [Batching admitted tasks]): who gets which output,
// what a failed batch does, how the cap moves. The TorchScript side is in torch_mask_model_test.
#include "models/forward_batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <optional>
#include <thread>
#include <vector>

namespace segmentor {
namespace {

using namespace std::chrono_literals;
using IntBatcher = ForwardBatcher<int, int>;

// Output = input × 10 + the batch's size, so a caller can tell it got its own slice and how big
// its batch was.
Result<std::vector<int>> times_ten(std::vector<int>& inputs) {
  std::vector<int> out;
  for (int v : inputs) out.push_back(v * 10 + static_cast<int>(inputs.size()));
  return out;
}

TEST(ForwardBatcherTest, EveryCallerGetsItsOwnOutputUnderConcurrency) {
  ForwardBatcherOptions options;
  options.max_batch = 8;
  IntBatcher batcher(options, times_ten);
  constexpr int kThreads = 16;
  constexpr int kCalls = 200;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        const int input = t * 100000 + i;
        IntBatcher::Preparing preparing(batcher);
        auto out = batcher.submit(input, &preparing);
        // The batch size is in the last digit: strip it, and the input must come back.
        if (!out.ok() || (*out - *out % 10) / 10 != input || *out % 10 < 1 || *out % 10 > 8) {
          ++wrong;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
  const BatchStats stats = batcher.stats();
  EXPECT_EQ(stats.inputs, static_cast<std::uint64_t>(kThreads * kCalls));
  EXPECT_GT(stats.largest, 1);  // 16 threads on one batcher: some passes carried several
  EXPECT_LE(stats.largest, 8);
  EXPECT_LT(stats.batches, stats.inputs);
  EXPECT_EQ(stats.split_batches, 0u);
}

// Warming a batch size (Note [Warm every slot before ready]): inputs queued together on an idle
// batcher run as one batch, in order; more than the cap are split by it.
TEST(ForwardBatcherTest, InputsSubmittedTogetherRunAsOneBatch) {
  ForwardBatcherOptions options;
  options.max_batch = 4;
  IntBatcher batcher(options, times_ten);
  for (int size = 1; size <= 4; ++size) {
    std::vector<int> inputs;
    for (int i = 0; i < size; ++i) inputs.push_back(i + 1);
    const auto outputs = batcher.submit_together(inputs);
    ASSERT_EQ(outputs.size(), static_cast<std::size_t>(size));
    for (int i = 0; i < size; ++i) {
      ASSERT_TRUE(outputs[static_cast<std::size_t>(i)].ok());
      EXPECT_EQ(*outputs[static_cast<std::size_t>(i)], (i + 1) * 10 + size);  // one batch of size
    }
  }
  const auto split = batcher.submit_together({1, 2, 3, 4, 5, 6});
  ASSERT_EQ(split.size(), 6u);
  EXPECT_EQ(*split[0], 14);  // the first four together
  EXPECT_EQ(*split[5], 62);  // the last two together
  EXPECT_EQ(batcher.stats().largest, 4);
}

TEST(ForwardBatcherTest, WaitsForPreparingCallersAndNoLongerThanMaxWait) {
  ForwardBatcherOptions options;
  options.max_batch = 4;
  options.max_wait = 2s;  // long enough that a test that waits it out would be slow to notice
  IntBatcher batcher(options, times_ten);
  // Three callers announce themselves, then submit one after another: the first waits for the
  // other two, and all three share one pass.
  std::barrier announced(3);
  std::vector<int> outputs(3);
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      IntBatcher::Preparing preparing(batcher);
      announced.arrive_and_wait();
      std::this_thread::sleep_for(std::chrono::milliseconds(20 * t));
      outputs[static_cast<std::size_t>(t)] = *batcher.submit(t + 1, &preparing);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(outputs, (std::vector<int>{13, 23, 33}));  // one batch of three
  EXPECT_EQ(batcher.stats().batches, 1u);

  // A caller that announces itself and never submits (it failed while preparing, say) holds a
  // lone caller up for max_wait at most; with nobody preparing there is no wait at all.
  options.max_wait = 50ms;
  IntBatcher short_wait(options, times_ten);
  {
    IntBatcher::Preparing never_submits(short_wait);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_EQ(*short_wait.submit(7), 71);
    const auto waited = std::chrono::steady_clock::now() - start;
    EXPECT_GE(waited, 45ms);
    EXPECT_LT(waited, 1s);
  }
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(*short_wait.submit(8), 81);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 40ms);
}

// Runs batches of more than one as an out-of-memory error; alone, each input runs.
Result<std::vector<int>> oom_when_batched(std::vector<int>& inputs) {
  if (inputs.size() > 1) return out_of_memory("a batch of " + std::to_string(inputs.size()));
  return times_ten(inputs);
}

// Submits `count` inputs at once (each announced first, so they share a batch) and returns each
// caller's result in input order.
std::vector<Result<int>> submit_together(IntBatcher& batcher, int count) {
  std::vector<std::optional<Result<int>>> results(static_cast<std::size_t>(count));
  std::barrier announced(count);
  std::vector<std::thread> threads;
  for (int t = 0; t < count; ++t) {
    threads.emplace_back([&, t] {
      IntBatcher::Preparing preparing(batcher);
      announced.arrive_and_wait();
      results[static_cast<std::size_t>(t)].emplace(batcher.submit(t + 1, &preparing));
    });
  }
  for (auto& thread : threads) thread.join();
  std::vector<Result<int>> out;
  for (auto& result : results) out.push_back(std::move(*result));
  return out;
}

TEST(ForwardBatcherTest, AFailedBatchRunsAgainOneByOneAndHalvesTheCap) {
  ForwardBatcherOptions options;
  options.max_batch = 4;
  options.max_wait = 1s;
  IntBatcher batcher(options, oom_when_batched);
  const auto results = submit_together(batcher, 4);
  for (int t = 0; t < 4; ++t) {
    ASSERT_TRUE(results[static_cast<std::size_t>(t)].ok()) << t;
    EXPECT_EQ(*results[static_cast<std::size_t>(t)], (t + 1) * 10 + 1);  // its own, alone
  }
  const BatchStats stats = batcher.stats();
  EXPECT_EQ(stats.split_batches, 1u);
  EXPECT_EQ(stats.largest, 4);
  EXPECT_EQ(stats.cap, 2);  // halved by the out-of-memory error
}

TEST(ForwardBatcherTest, AnErrorReachesEveryCallerOfTheBatchAsItsOwn) {
  ForwardBatcherOptions options;
  options.max_batch = 4;
  options.max_wait = 1s;
  IntBatcher batcher(options, [](std::vector<int>& inputs) -> Result<std::vector<int>> {
    return out_of_memory("no room for " + std::to_string(inputs.size()));
  });
  const auto results = submit_together(batcher, 3);
  for (const auto& result : results) {
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), ErrorCode::kOutOfMemory);  // for the task's ladder
    EXPECT_EQ(result.status().message(), "no room for 1");       // from its own pass
  }
  // Other errors keep their code.
  IntBatcher broken(options, [](std::vector<int>&) -> Result<std::vector<int>> {
    return internal_error("broken");
  });
  EXPECT_EQ(broken.submit(1).status().code(), ErrorCode::kInternal);
  EXPECT_EQ(broken.stats().cap, 4);  // only out-of-memory errors shrink the cap
}

TEST(ForwardBatcherTest, AWrongNumberOfOutputsIsAnErrorNotAMixUp) {
  IntBatcher batcher({}, [](std::vector<int>&) -> Result<std::vector<int>> {
    return std::vector<int>{1, 2};
  });
  EXPECT_EQ(batcher.submit(5).status().code(), ErrorCode::kInternal);
}

TEST(ForwardBatcherTest, TheCapGrowsBackAfterCleanBatchesAndLimitLowersIt) {
  ForwardBatcherOptions options;
  options.max_batch = 4;
  options.max_wait = 1s;
  std::atomic<bool> fail{true};
  IntBatcher batcher(options, [&](std::vector<int>& inputs) -> Result<std::vector<int>> {
    if (fail && inputs.size() > 1) return out_of_memory("batch");
    return times_ten(inputs);
  });
  (void)submit_together(batcher, 4);
  EXPECT_EQ(batcher.stats().cap, 2);
  fail = false;
  for (int i = 0; i < kBatchesPerCapIncrease; ++i) ASSERT_TRUE(batcher.submit(i).ok());
  EXPECT_EQ(batcher.stats().cap, 3);
  batcher.limit(1);
  EXPECT_EQ(batcher.max_batch(), 1);
  EXPECT_EQ(batcher.stats().cap, 1);
  batcher.limit(6);  // never raises
  EXPECT_EQ(batcher.max_batch(), 1);
  const BatchStats before = batcher.stats();
  for (const auto& result : submit_together(batcher, 3)) ASSERT_TRUE(result.ok());
  EXPECT_EQ(batcher.stats().batches - before.batches, 3u);  // one pass each
}

}  // namespace
}  // namespace segmentor
