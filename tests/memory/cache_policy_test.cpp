#include "memory/cache_policy.h"
#include "memory/cache_ticker.h"

#include <gtest/gtest.h>

#include <thread>

#include "fake_clock.h"
#include "memory/fake_device.h"

namespace segmentor {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::FakeClock;

std::unique_ptr<CachePolicy> make_policy(FakeDevice& device, CachePolicyOptions options) {
  auto policy = CachePolicy::create(std::move(options), &device);
  EXPECT_TRUE(policy.ok()) << policy.status().to_string();
  return std::move(policy).value();
}

std::uint64_t by_reason(const CacheStats& s, ReleaseReason reason) {
  return s.releases_by_reason[static_cast<std::size_t>(reason)];
}

TEST(CachePolicyTest, RejectsBadOptions) {
  FakeDevice device(1000);
  CachePolicyOptions o;
  o.cleanup_every_n = -1;
  EXPECT_FALSE(CachePolicy::create(o, &device).ok());
  EXPECT_FALSE(CachePolicy::create(CachePolicyOptions{}, nullptr).ok());
}

TEST(CachePolicyTest, ReleasesEveryNTasks) {
  FakeDevice device(1000);
  CachePolicyOptions o;
  o.cleanup_every_n = 3;
  auto policy = make_policy(device, o);
  std::vector<bool> released;
  for (int i = 0; i < 7; ++i) {
    policy->on_task_started();
    released.push_back(policy->on_task_finished().has_value());
  }
  EXPECT_EQ(released, (std::vector<bool>{false, false, true, false, false, true, false}));
  EXPECT_EQ(device.release_calls(), 2);
  EXPECT_EQ(by_reason(policy->stats(), ReleaseReason::kEveryN), 2u);
  EXPECT_EQ(policy->stats().tasks_finished, 7u);
}

TEST(CachePolicyTest, EveryNOffByDefault) {
  FakeDevice device(1000);
  auto policy = make_policy(device, CachePolicyOptions{});
  for (int i = 0; i < 100; ++i) {
    policy->on_task_started();
    EXPECT_FALSE(policy->on_task_finished().has_value());
  }
  EXPECT_EQ(device.release_calls(), 0);
}

TEST(CachePolicyTest, ReleasesOnceWhenIdle) {
  FakeDevice device(1000);
  FakeClock clock;
  CachePolicyOptions o;
  o.idle_after = seconds(30);
  o.pressure_fraction = 0.0;  // only idleness here
  o.now = clock.fn();
  auto policy = make_policy(device, o);

  policy->on_task_started();
  clock.advance(seconds(60));
  EXPECT_FALSE(policy->on_tick().has_value());  // a task is running: not idle
  (void)policy->on_task_finished();
  clock.advance(seconds(29));
  EXPECT_FALSE(policy->on_tick().has_value());
  clock.advance(seconds(1));
  EXPECT_EQ(policy->on_tick(), ReleaseReason::kIdle);
  clock.advance(seconds(60));
  EXPECT_FALSE(policy->on_tick().has_value());  // once per idle period

  policy->on_task_started();
  (void)policy->on_task_finished();
  clock.advance(seconds(30));
  EXPECT_EQ(policy->on_tick(), ReleaseReason::kIdle);
  EXPECT_EQ(by_reason(policy->stats(), ReleaseReason::kIdle), 2u);
  EXPECT_EQ(device.release_calls(), 2);
}

TEST(CachePolicyTest, ReleasesUnderPressure) {
  FakeDevice device(1000);
  CachePolicyOptions o;
  o.pressure_fraction = 0.10;
  o.idle_after = seconds(0);  // only pressure here
  auto policy = make_policy(device, o);

  auto live = device.allocate(700);
  ASSERT_TRUE(live.ok());
  auto a = device.allocate(100);
  ASSERT_TRUE(a.ok());
  device.free(*a);
  EXPECT_FALSE(policy->on_tick().has_value());  // 800 reserved: 200 unreserved, above 10 %

  auto b = device.allocate(150);
  ASSERT_TRUE(b.ok());
  device.free(*b);  // 950 reserved, 250 of it cached: 50 unreserved, below 10 %
  EXPECT_EQ(policy->on_tick(), ReleaseReason::kPressure);
  EXPECT_EQ(device.cached_bytes(), 0);
  EXPECT_EQ(device.reserved_bytes(), 700);
  EXPECT_FALSE(policy->on_tick().has_value());  // nothing cached to give back
  EXPECT_EQ(by_reason(policy->stats(), ReleaseReason::kPressure), 1u);
}

TEST(CachePolicyTest, ALargeCacheFarFromTheBudgetIsKeptForReuse) {
  FakeDevice device(1000);
  CachePolicyOptions o;
  o.idle_after = seconds(0);
  auto policy = make_policy(device, o);
  auto a = device.allocate(600);
  ASSERT_TRUE(a.ok());
  device.free(*a);  // 600 cached, 400 unreserved
  EXPECT_FALSE(policy->on_tick().has_value());
  EXPECT_EQ(device.release_calls(), 0);
}

TEST(CachePolicyTest, PressureIsRelativeToTheLiveBudget) {
  FakeDevice device(1000);
  CachePolicyOptions o;
  o.idle_after = seconds(0);
  auto policy = make_policy(device, o);
  auto a = device.allocate(80);
  ASSERT_TRUE(a.ok());
  device.free(*a);
  EXPECT_FALSE(policy->on_tick().has_value());  // 80 reserved of a 1000 budget
  device.set_other_process_bytes(950);          // a neighbour grew: budget 50 < 80 reserved
  EXPECT_EQ(policy->on_tick(), ReleaseReason::kPressure);
}

TEST(CachePolicyTest, AfterOomAlwaysReleasesAndTimesIt) {
  FakeDevice device(1000);
  device.set_release_cost(milliseconds(4));
  auto policy = make_policy(device, CachePolicyOptions{});
  EXPECT_EQ(policy->on_out_of_memory(), milliseconds(4));
  device.set_release_cost(milliseconds(6));
  EXPECT_EQ(policy->on_out_of_memory(), milliseconds(6));
  EXPECT_EQ(policy->release_now(), milliseconds(6));
  const CacheStats s = policy->stats();
  EXPECT_EQ(s.releases_total, 3u);
  EXPECT_EQ(by_reason(s, ReleaseReason::kAfterOom), 2u);
  EXPECT_EQ(by_reason(s, ReleaseReason::kManual), 1u);
  EXPECT_EQ(s.release_time_total, milliseconds(16));
  EXPECT_EQ(s.last_release_time, milliseconds(6));
  EXPECT_EQ(s.last_reason, ReleaseReason::kManual);
  EXPECT_EQ(to_string(ReleaseReason::kAfterOom), "after_oom");
}

}  // namespace
}  // namespace segmentor

namespace segmentor {
namespace {

TEST(CacheTickerTest, TicksThePolicySoPressureIsReleasedWithoutTasks) {
  FakeDevice device(1000);
  CachePolicyOptions o;
  o.idle_after = std::chrono::seconds(0);
  auto policy = make_policy(device, o);
  auto a = device.allocate(950);
  ASSERT_TRUE(a.ok());
  device.free(*a);  // 950 cached, 50 unreserved: pressure
  {
    CacheTicker ticker(*policy, std::chrono::milliseconds(5));
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (device.release_calls() == 0 && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }  // the destructor stops the thread promptly
  EXPECT_GE(device.release_calls(), 1);
  EXPECT_EQ(device.cached_bytes(), 0);
}

}  // namespace
}  // namespace segmentor
