#include "memory/oom_recovery.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

#include "memory/fake_device.h"

namespace segmentor {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// Records the back-off instead of sleeping.
struct SleepRecorder {
  std::vector<nanoseconds> waits;
  std::function<void(nanoseconds)> fn() {
    return [this](nanoseconds d) { waits.push_back(d); };
  }
};

// One task attempt on the fake device: allocate its working memory, "compute", free it.
Status attempt_on(FakeDevice& device, std::int64_t bytes) {
  auto id = device.allocate(bytes);
  if (!id.ok()) return id.status();
  device.free(*id);
  return Status::Ok();
}

struct Ladder {
  explicit Ladder(RecoveryOptions options, std::int64_t capacity = 1000) : device(capacity) {
    AdmissionGateOptions gate_options;
    gate_options.memory_threshold = 1.0;
    gate_options.max_concurrent = 8;
    gate = std::move(AdmissionGate::create(gate_options, &device)).value();
    options.sleep = sleeps.fn();
    recovery = std::move(OomRecovery::create(std::move(options), &device, gate.get())).value();
  }
  // Puts the card near the budget, where an OOM means too much was admitted (Note
  // [Over-admission or a passing OOM]): the gate has admitted a task of `task` bytes, and `used`
  // bytes stay allocated, so less than one task's room is left.
  void hold_near_budget(std::int64_t used = 950, std::int64_t task = 100) {
    { auto ticket = gate->try_admit(task); }
    held = *device.allocate(used);
  }
  FakeDevice device;
  SleepRecorder sleeps;
  std::unique_ptr<AdmissionGate> gate;
  std::unique_ptr<OomRecovery> recovery;
  std::optional<FakeDevice::AllocationId> held;
};

TEST(OomRecoveryTest, RejectsBadOptions) {
  FakeDevice device(1000);
  RecoveryOptions negative;
  negative.max_oom_retries = -1;
  EXPECT_FALSE(OomRecovery::create(negative, &device).ok());
  EXPECT_FALSE(OomRecovery::create(RecoveryOptions{}, nullptr).ok());
}

TEST(OomRecoveryTest, SuccessFirstTimeTouchesNothing) {
  Ladder l(RecoveryOptions{});
  RecoveryReport report;
  EXPECT_TRUE(l.recovery->run([&] { return attempt_on(l.device, 100); }, {}, &report).ok());
  EXPECT_EQ(report.gpu_attempts, 1);
  EXPECT_TRUE(report.succeeded);
  const RecoveryStats s = l.recovery->stats();
  EXPECT_EQ(s.oom_events, 0u);
  EXPECT_EQ(s.cache_releases, 0u);
  EXPECT_EQ(l.device.release_calls(), 0);
  EXPECT_TRUE(l.sleeps.waits.empty());
}

TEST(OomRecoveryTest, FragmentationOomIsRetriedAfterReleasingTheCacheAndSucceeds) {
  Ladder l(RecoveryOptions{});
  // Three 300-byte blocks cached: 1000 bytes free in total, but no 500-byte hole.
  std::vector<FakeDevice::AllocationId> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(*l.device.allocate(300));
  for (auto id : ids) l.device.free(id);

  auto ticket = l.gate->try_admit(500);
  ASSERT_TRUE(ticket);
  RecoveryReport report;
  const Status status = l.recovery->run([&] { return attempt_on(l.device, 500); }, {}, &report);
  ASSERT_TRUE(status.ok()) << status.to_string();
  EXPECT_EQ(report.gpu_attempts, 2);
  EXPECT_EQ(report.oom_events, 1);
  EXPECT_FALSE(report.used_cpu_fallback);
  EXPECT_NE(report.trail.find("released cache"), std::string::npos);

  const RecoveryStats s = l.recovery->stats();
  EXPECT_EQ(s.oom_events, 1u);
  EXPECT_EQ(s.cache_releases, 1u);
  EXPECT_EQ(s.retries, 1u);
  EXPECT_EQ(s.recovered_on_gpu, 1u);
  EXPECT_EQ(s.failed_tasks, 0u);
  EXPECT_EQ(l.device.release_calls(), 1);
  EXPECT_EQ(l.sleeps.waits, (std::vector<nanoseconds>{milliseconds(500)}));
  EXPECT_EQ(l.gate->stats().shrinks_total, 1u);  // the gate learned from it
}

TEST(OomRecoveryTest, RetriesExhaustedThenCpuFallbackSucceeds) {
  Ladder l(RecoveryOptions{});
  l.hold_near_budget();
  l.device.fail_always(true);
  int cpu_calls = 0;
  RecoveryReport report;
  const Status status = l.recovery->run([&] { return attempt_on(l.device, 100); },
                                        [&] {
                                          ++cpu_calls;
                                          return Status::Ok();
                                        },
                                        &report);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(cpu_calls, 1);
  EXPECT_EQ(report.gpu_attempts, 4);  // 1 + MAX_OOM_RETRIES
  EXPECT_TRUE(report.used_cpu_fallback);
  EXPECT_EQ(l.sleeps.waits,
            (std::vector<nanoseconds>{milliseconds(500), milliseconds(1000), milliseconds(2000)}));
  const RecoveryStats s = l.recovery->stats();
  EXPECT_EQ(s.oom_events, 4u);
  EXPECT_EQ(s.cache_releases, 4u);
  EXPECT_EQ(s.retries, 3u);
  EXPECT_EQ(s.cpu_fallbacks, 1u);
  EXPECT_EQ(s.recovered_on_cpu, 1u);
  EXPECT_EQ(s.cpu_fallback_failures, 0u);
  EXPECT_EQ(s.failed_tasks, 0u);
  EXPECT_EQ(s.backoff_time_total, milliseconds(3500));
  EXPECT_EQ(s.over_admission_ooms, 4u);
  EXPECT_EQ(s.immediate_retries, 0u);
  EXPECT_EQ(l.gate->stats().oom_signals_total, 4u);  // every OOM near the budget told the gate
}

TEST(OomRecoveryTest, HooksSurroundEveryBackOffAndNothingElse) {
  Ladder l(RecoveryOptions{});
  l.hold_near_budget();
  std::vector<std::string> events;
  RecoveryOptions options;
  options.sleep = [&](nanoseconds) { events.push_back("sleep"); };
  auto recovery = std::move(OomRecovery::create(options, &l.device, l.gate.get())).value();
  LadderHooks hooks;
  hooks.before_backoff = [&] { events.push_back("give back"); };
  hooks.after_backoff = [&] {
    events.push_back("take again");
    return Status::Ok();
  };
  int attempts = 0;
  const Status status = recovery->run(
      [&] {
        events.push_back("attempt");
        return ++attempts < 3 ? Status(ErrorCode::kOutOfMemory, "CUDA out of memory")
                              : Status::Ok();
      },
      {}, nullptr, hooks);
  ASSERT_TRUE(status.ok()) << status.to_string();
  EXPECT_EQ(events,
            (std::vector<std::string>{"attempt", "give back", "sleep", "take again", "attempt",
                                      "give back", "sleep", "take again", "attempt"}));
}

TEST(OomRecoveryTest, AFailedResumeEndsTheLadderWithoutTheFallback) {
  Ladder l(RecoveryOptions{});
  l.hold_near_budget();
  l.device.fail_always(true);
  int cpu_calls = 0;
  LadderHooks hooks;
  hooks.after_backoff = [] { return unavailable("admission cancelled: shutting down"); };
  RecoveryReport report;
  const Status status = l.recovery->run([&] { return attempt_on(l.device, 100); },
                                        [&] {
                                          ++cpu_calls;
                                          return Status::Ok();
                                        },
                                        &report, hooks);
  EXPECT_EQ(status.code(), ErrorCode::kUnavailable);
  EXPECT_NE(status.message().find("shutting down"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("gpu attempt 1: fake device: injected out-of-memory"),
            std::string::npos)
      << status.message();
  EXPECT_EQ(report.gpu_attempts, 1);
  EXPECT_EQ(cpu_calls, 0);
  EXPECT_FALSE(report.succeeded);
  EXPECT_EQ(l.recovery->stats().failed_tasks, 1u);
}

TEST(OomRecoveryTest, RetryOnOomFalseGoesStraightToTheFallback) {
  RecoveryOptions options;
  options.retry_on_oom = false;
  Ladder l(options);
  l.device.fail_always(true);
  int cpu_calls = 0;
  RecoveryReport report;
  ASSERT_TRUE(l.recovery
                  ->run([&] { return attempt_on(l.device, 100); },
                        [&] {
                          ++cpu_calls;
                          return Status::Ok();
                        },
                        &report)
                  .ok());
  EXPECT_EQ(report.gpu_attempts, 1);
  EXPECT_EQ(cpu_calls, 1);
  EXPECT_TRUE(l.sleeps.waits.empty());
  EXPECT_EQ(l.recovery->stats().retries, 0u);
  // Far below the budget: nothing to gain from a release (Note [Over-admission or a passing OOM]).
  EXPECT_EQ(l.recovery->stats().cache_releases, 0u);
  EXPECT_NE(report.trail.find("RETRY_ON_OOM=false"), std::string::npos);
}

TEST(OomRecoveryTest, NonOomErrorsAreReturnedAtOnce) {
  Ladder l(RecoveryOptions{});
  int gpu_calls = 0;
  int cpu_calls = 0;
  const Status status = l.recovery->run(
      [&] {
        ++gpu_calls;
        return corrupt_data("photo.jpg: premature end of data");
      },
      [&] {
        ++cpu_calls;
        return Status::Ok();
      });
  EXPECT_EQ(status.code(), ErrorCode::kCorruptData);
  EXPECT_EQ(status.message(), "photo.jpg: premature end of data");
  EXPECT_EQ(gpu_calls, 1);
  EXPECT_EQ(cpu_calls, 0);
  const RecoveryStats s = l.recovery->stats();
  EXPECT_EQ(s.non_oom_errors, 1u);
  EXPECT_EQ(s.oom_events, 0u);
  EXPECT_EQ(s.failed_tasks, 0u);
  EXPECT_EQ(l.device.release_calls(), 0);
  EXPECT_TRUE(l.sleeps.waits.empty());
}

// Like ONNX Runtime's TestBackoffDoesntHang: a device that always fails and a fallback that fails
// too. The ladder must end, with bounded attempts and every counter right.
TEST(OomRecoveryTest, LadderTerminatesAgainstAnAlwaysFailingDevice) {
  RecoveryOptions options;
  options.max_oom_retries = 50;
  Ladder l(options);
  l.hold_near_budget();
  l.device.fail_always(true);
  int gpu_calls = 0;
  int cpu_calls = 0;
  RecoveryReport report;
  const Status status = l.recovery->run(
      [&] {
        ++gpu_calls;
        return attempt_on(l.device, 100);
      },
      [&] {
        ++cpu_calls;
        return out_of_memory("host: cannot allocate 100 bytes");
      },
      &report);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), ErrorCode::kOutOfMemory);
  EXPECT_EQ(gpu_calls, 51);
  EXPECT_EQ(cpu_calls, 1);
  EXPECT_FALSE(report.succeeded);
  // The reason tells every rung.
  EXPECT_NE(status.message().find("gave up after 51 GPU attempts"), std::string::npos);
  EXPECT_NE(status.message().find("retries exhausted (MAX_OOM_RETRIES=50)"), std::string::npos);
  EXPECT_NE(status.message().find("cpu fallback failed"), std::string::npos);
  EXPECT_NE(status.message().find("backed off"), std::string::npos);

  const RecoveryStats s = l.recovery->stats();
  EXPECT_EQ(s.oom_events, 51u);
  EXPECT_EQ(s.cache_releases, 51u);
  EXPECT_EQ(s.retries, 50u);
  EXPECT_EQ(s.cpu_fallbacks, 1u);
  EXPECT_EQ(s.cpu_fallback_failures, 1u);
  EXPECT_EQ(s.failed_tasks, 1u);
  EXPECT_EQ(s.recovered_on_gpu + s.recovered_on_cpu, 0u);
  // The back-off repeats its last step: 0.5 + 1 + 48 × 2 s.
  ASSERT_EQ(l.sleeps.waits.size(), 50u);
  EXPECT_EQ(l.sleeps.waits.back(), milliseconds(2000));
  EXPECT_EQ(s.backoff_time_total, milliseconds(500 + 1000 + 48 * 2000));
  EXPECT_EQ(l.device.release_calls(), 51);
}

TEST(OomRecoveryTest, WithoutFallbackTheFailureSaysSo) {
  RecoveryOptions options;
  options.max_oom_retries = 1;
  Ladder l(options);
  l.device.fail_always(true);
  const Status status = l.recovery->run([&] { return attempt_on(l.device, 100); });
  EXPECT_EQ(status.code(), ErrorCode::kOutOfMemory);
  EXPECT_NE(status.message().find("no cpu fallback"), std::string::npos);
  EXPECT_EQ(l.recovery->stats().failed_tasks, 1u);
  EXPECT_EQ(l.recovery->stats().cpu_fallbacks, 0u);
}

TEST(OomRecoveryTest, CpuFallbackFailureKeepsItsOwnCode) {
  RecoveryOptions options;
  options.retry_on_oom = false;
  Ladder l(options);
  l.device.fail_always(true);
  const Status status = l.recovery->run([&] { return attempt_on(l.device, 100); },
                                        [] { return internal_error("cpu model missing"); });
  EXPECT_EQ(status.code(), ErrorCode::kInternal);
  EXPECT_NE(status.message().find("cpu model missing"), std::string::npos);
}

TEST(OomRecoveryTest, ReleasesThroughTheCachePolicyWhenGiven) {
  FakeDevice device(1000);
  device.set_release_cost(milliseconds(7));
  auto cache = std::move(CachePolicy::create(CachePolicyOptions{}, &device)).value();
  SleepRecorder sleeps;
  RecoveryOptions options;
  options.max_oom_retries = 2;
  options.sleep = sleeps.fn();
  auto recovery = std::move(OomRecovery::create(options, &device, nullptr, cache.get())).value();
  const auto held = device.allocate(900);  // near the budget: room 100 < 15 % of it
  ASSERT_TRUE(held.ok());
  device.fail_every_nth(1);  // every allocation fails...
  int attempts = 0;
  const Status status = recovery->run([&] {
    if (++attempts == 3) device.fail_every_nth(0);  // ...until the last retry
    return attempt_on(device, 100);
  });
  ASSERT_TRUE(status.ok()) << status.to_string();
  const CacheStats cs = cache->stats();
  EXPECT_EQ(cs.releases_total, 2u);
  EXPECT_EQ(cs.releases_by_reason[static_cast<std::size_t>(ReleaseReason::kAfterOom)], 2u);
  EXPECT_EQ(cs.release_time_total, milliseconds(14));
  EXPECT_EQ(recovery->stats().cache_release_time_total, milliseconds(14));
}

TEST(OomRecoveryTest, RunForReturnsTheValue) {
  Ladder l(RecoveryOptions{});
  int calls = 0;
  Result<int> result = l.recovery->run_for<int>([&]() -> Result<int> {
    if (++calls == 1) return out_of_memory("CUDA out of memory. Tried to allocate 12 MiB");
    return 42;
  });
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(*result, 42);
  EXPECT_EQ(l.recovery->stats().retries, 1u);

  Result<int> from_cpu = l.recovery->run_for<int>(
      []() -> Result<int> { return out_of_memory("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"); },
      []() -> Result<int> { return 7; });
  ASSERT_TRUE(from_cpu.ok());
  EXPECT_EQ(*from_cpu, 7);
}

// Note [Over-admission or a passing OOM]: the same failure, judged by where the card stands.
TEST(OomRecoveryTest, AnOomFarBelowTheBudgetIsRetriedAtOnceAndLeavesTheGateAlone) {
  Ladder l(RecoveryOptions{});
  auto ticket = l.gate->try_admit(100);  // one task in flight, 900 bytes of room to spare
  ASSERT_TRUE(ticket);
  l.device.fail_every_nth(1);
  int before = 0;
  int after = 0;
  LadderHooks hooks;
  hooks.before_backoff = [&] { ++before; };
  hooks.after_backoff = [&] {
    ++after;
    return Status::Ok();
  };
  int attempts = 0;
  RecoveryReport report;
  const Status status = l.recovery->run(
      [&] {
        if (++attempts == 2) l.device.fail_every_nth(0);  // a transient: gone on the retry
        return attempt_on(l.device, 100);
      },
      {}, &report, hooks);
  ASSERT_TRUE(status.ok()) << status.to_string();
  EXPECT_EQ(report.gpu_attempts, 2);
  EXPECT_EQ(report.oom_events, 1);
  EXPECT_EQ(report.over_admission_ooms, 0);
  EXPECT_NE(report.trail.find("below budget"), std::string::npos) << report.trail;
  EXPECT_NE(report.trail.find("retried at once"), std::string::npos) << report.trail;
  EXPECT_TRUE(l.sleeps.waits.empty()) << "no back-off for a passing OOM";
  EXPECT_EQ(before + after, 0) << "the task kept its ticket";
  EXPECT_EQ(l.device.release_calls(), 0) << "no cache release for a passing OOM";
  const RecoveryStats s = l.recovery->stats();
  EXPECT_EQ(s.below_budget_ooms, 1u);
  EXPECT_EQ(s.over_admission_ooms, 0u);
  EXPECT_EQ(s.immediate_retries, 1u);
  EXPECT_EQ(s.retries, 1u);
  EXPECT_EQ(s.cache_releases, 0u);
  EXPECT_EQ(s.recovered_on_gpu, 1u);
  const GateStats g = l.gate->stats();
  EXPECT_EQ(g.oom_signals_total, 0u);
  EXPECT_EQ(g.shrinks_total, 0u);
  EXPECT_FALSE(g.aimd_cap_bytes.has_value());
}

TEST(OomRecoveryTest, TheSameOomNearTheBudgetShrinksTheGateAndBacksOff) {
  Ladder l(RecoveryOptions{});
  l.hold_near_budget();  // 50 bytes left: less than one 100-byte task
  auto ticket = l.gate->try_admit(100);
  ASSERT_TRUE(ticket);
  l.device.fail_every_nth(1);
  int attempts = 0;
  RecoveryReport report;
  const Status status = l.recovery->run(
      [&] {
        if (++attempts == 2) l.device.fail_every_nth(0);
        return attempt_on(l.device, 100);  // needs more than is left: a real OOM, too
      },
      {}, &report);
  // An injected OOM, then three real ones (100 bytes do not fit in 50), all near the budget.
  EXPECT_EQ(status.code(), ErrorCode::kOutOfMemory);
  EXPECT_EQ(report.over_admission_ooms, report.oom_events);
  EXPECT_EQ(report.oom_events, 4);
  EXPECT_EQ(l.sleeps.waits,
            (std::vector<nanoseconds>{milliseconds(500), milliseconds(1000), milliseconds(2000)}));
  const RecoveryStats s = l.recovery->stats();
  EXPECT_EQ(s.immediate_retries, 0u);
  EXPECT_EQ(s.cache_releases, 4u);
  const GateStats g = l.gate->stats();
  EXPECT_EQ(g.oom_signals_total, 4u);
  EXPECT_EQ(g.shrinks_total, 1u);  // one decrease per cohort (Note [Gate arithmetic])
  ASSERT_TRUE(g.aimd_cap_bytes.has_value());
  EXPECT_EQ(*g.aimd_cap_bytes, 100);  // min(room, in flight) × 0.7, floored at one task
}

TEST(OomRecoveryTest, ABelowBudgetOomThatPersistsBacksOffOnceRetriedButNeverShrinks) {
  Ladder l(RecoveryOptions{});
  auto ticket = l.gate->try_admit(100);
  ASSERT_TRUE(ticket);
  l.device.fail_always(true);
  int cpu_calls = 0;
  RecoveryReport report;
  const Status status = l.recovery->run([&] { return attempt_on(l.device, 100); },
                                        [&] {
                                          ++cpu_calls;
                                          return Status::Ok();
                                        },
                                        &report);
  ASSERT_TRUE(status.ok()) << status.to_string();
  EXPECT_EQ(report.gpu_attempts, 4);  // still 1 + MAX_OOM_RETRIES
  EXPECT_EQ(cpu_calls, 1);
  // The first retry was at once; the back-off steps start from the first one for the rest, a
  // fifth of each (the room was free: nothing to drain).
  EXPECT_EQ(l.sleeps.waits, (std::vector<nanoseconds>{milliseconds(100), milliseconds(200)}));
  const RecoveryStats s = l.recovery->stats();
  EXPECT_EQ(s.below_budget_ooms, 4u);
  EXPECT_EQ(s.backoff_time_total, milliseconds(300));
  EXPECT_EQ(s.immediate_retries, 1u);
  EXPECT_EQ(s.retries, 3u);
  EXPECT_EQ(s.cache_releases, 0u);  // room was free at every OOM: nothing to release
  EXPECT_EQ(s.cpu_fallbacks, 1u);
  EXPECT_EQ(l.gate->stats().oom_signals_total, 0u);
  EXPECT_EQ(l.gate->stats().shrinks_total, 0u);
}

TEST(OomRecoveryTest, ANeighbourStillOnTheCardCountsAsOverAdmissionOneGoneDoesNot) {
  Ladder l(RecoveryOptions{});
  auto ticket = l.gate->try_admit(100);
  ASSERT_TRUE(ticket);
  l.device.fail_every_nth(1);
  l.device.set_other_process_bytes(950);  // the card is full: 50 bytes left for us
  RecoveryOptions one_try;
  one_try.max_oom_retries = 0;
  auto ladder = std::move(OomRecovery::create(one_try, &l.device, l.gate.get())).value();
  EXPECT_FALSE(ladder->run([&] { return attempt_on(l.device, 100); }).ok());
  EXPECT_EQ(ladder->stats().over_admission_ooms, 1u);
  EXPECT_EQ(l.gate->stats().oom_signals_total, 1u);

  l.device.set_other_process_bytes(0);  // the neighbour's spike is over when we look
  EXPECT_FALSE(ladder->run([&] { return attempt_on(l.device, 100); }).ok());
  EXPECT_EQ(ladder->stats().below_budget_ooms, 1u);
  EXPECT_EQ(l.gate->stats().oom_signals_total, 1u) << "no signal for the passing one";
}

TEST(OomRecoveryTest, RejectsABadThreshold) {
  FakeDevice device(1000);
  RecoveryOptions options;
  options.memory_threshold = 0.0;
  EXPECT_FALSE(OomRecovery::create(options, &device).ok());
}

// Many lanes share one ladder: the counters add up exactly.
TEST(OomRecoveryTest, CountersAreConsistentAcrossThreads) {
  RecoveryOptions options;
  options.max_oom_retries = 2;
  options.backoff = {};
  FakeDevice device(1'000'000);
  device.fail_with_probability(0.4, 7);
  auto recovery = std::move(OomRecovery::create(options, &device)).value();
  std::atomic<int> gpu_attempts{0};
  std::atomic<int> failures{0};
  constexpr int kThreads = 6;
  constexpr int kTasks = 200;
  {
    std::vector<std::jthread> lanes;
    for (int t = 0; t < kThreads; ++t) {
      lanes.emplace_back([&] {
        for (int i = 0; i < kTasks; ++i) {
          const Status st = recovery->run([&] {
            ++gpu_attempts;
            return attempt_on(device, 10);
          });
          if (!st.ok()) ++failures;
        }
      });
    }
  }
  const RecoveryStats s = recovery->stats();
  const std::uint64_t runs = kThreads * kTasks;
  EXPECT_EQ(static_cast<std::uint64_t>(gpu_attempts.load()), runs + s.retries);
  // Far below the budget: each task's first OOM is retried at once, and none releases the cache.
  EXPECT_EQ(s.cache_releases, s.over_admission_ooms);
  EXPECT_EQ(s.oom_events, s.below_budget_ooms + s.over_admission_ooms);
  EXPECT_GT(s.immediate_retries, 0u);
  EXPECT_EQ(s.oom_events, s.retries + s.failed_tasks);  // each OOM is retried or ends a task
  EXPECT_EQ(s.failed_tasks, static_cast<std::uint64_t>(failures.load()));
  EXPECT_GT(s.retries, 0u);
  EXPECT_GT(s.recovered_on_gpu, 0u);
}

}  // namespace
}  // namespace segmentor
