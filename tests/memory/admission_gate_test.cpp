#include "memory/admission_gate.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "fake_clock.h"
#include "memory/fake_device.h"

namespace segmentor {
namespace {

using testing::FakeClock;

// Everything in these tests is in plain bytes on a small fake card, so the arithmetic is readable.
std::unique_ptr<AdmissionGate> make_gate(FakeDevice& device, AdmissionGateOptions options) {
  auto gate = AdmissionGate::create(std::move(options), &device);
  EXPECT_TRUE(gate.ok()) << gate.status().to_string();
  return std::move(gate).value();
}

AdmissionGateOptions options(int min, int max, double threshold = 1.0) {
  AdmissionGateOptions o;
  o.min_concurrent = min;
  o.max_concurrent = max;
  o.memory_threshold = threshold;
  return o;
}

// Spins (yielding, not sleeping) until `done` holds; fails the test after 10 s of real time.
template <typename Predicate>
void wait_for(Predicate done) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done() && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
  ASSERT_TRUE(done());
}

// A device whose next reading throws once (a driver error surfacing as an exception).
class ThrowOnceDevice final : public FakeDevice {
 public:
  using FakeDevice::FakeDevice;
  MemorySnapshot snapshot() override {
    if (throw_next_.exchange(false)) throw std::runtime_error("driver error");
    return FakeDevice::snapshot();
  }
  void throw_next() { throw_next_.store(true); }

 private:
  std::atomic<bool> throw_next_{false};
};

// Issue 11, item 9: a throwing read used to leave the read marked in progress, so the budget was
// never read again.
TEST(AdmissionGateTest, AThrowingDeviceReadDoesNotFreezeTheBudget) {
  ThrowOnceDevice device(10'000);
  FakeClock clock;
  AdmissionGateOptions o = options(1, 8);
  o.now = clock.fn();
  auto gate = make_gate(device, o);
  ASSERT_EQ(gate->stats().budget_bytes, 10'000);
  device.set_other_process_bytes(4'000);
  device.throw_next();
  clock.advance(std::chrono::seconds(10));
  EXPECT_THROW((void)gate->try_admit(1), std::runtime_error);
  clock.advance(std::chrono::seconds(10));
  { auto ticket = gate->try_admit(1); }
  EXPECT_EQ(gate->stats().budget_bytes, 6'000) << "the budget is no longer refreshed";
}

TEST(AdmissionGateTest, RejectsBadOptions) {
  FakeDevice device(1000);
  EXPECT_FALSE(AdmissionGate::create(options(1, 4, 0.0), &device).ok());
  EXPECT_FALSE(AdmissionGate::create(options(1, 4, 1.5), &device).ok());
  EXPECT_FALSE(AdmissionGate::create(options(5, 4), &device).ok());
  EXPECT_FALSE(AdmissionGate::create(options(0, 0), &device).ok());
  EXPECT_FALSE(AdmissionGate::create(options(1, 4), nullptr).ok());
}

TEST(AdmissionGateTest, LimitIsBudgetTimesThreshold) {
  FakeDevice device(10'000);
  auto gate = make_gate(device, options(1, 8, 0.8));
  const GateStats s = gate->stats();
  EXPECT_EQ(s.budget_bytes, 10'000);
  EXPECT_EQ(s.threshold_budget_bytes, 8'000);
  EXPECT_EQ(s.limit_bytes, 8'000);
  EXPECT_FALSE(s.aimd_cap_bytes.has_value());
}

TEST(AdmissionGateTest, TryAdmitAdmitsByBytes) {
  FakeDevice device(1000);
  auto gate = make_gate(device, options(1, 10));
  auto a = gate->try_admit(400);
  auto b = gate->try_admit(400);
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(gate->try_admit(300));  // 1100 > 1000
  auto c = gate->try_admit(200);       // exactly 1000
  ASSERT_TRUE(c);
  EXPECT_EQ(gate->stats().in_flight_bytes, 1000);
  a->release();
  EXPECT_TRUE(gate->try_admit(300));
  const GateStats s = gate->stats();
  EXPECT_EQ(s.admitted_total, 4u);
  EXPECT_EQ(s.rejected_total, 1u);
}

TEST(AdmissionGateTest, AConcurrencyCapBoundsTasksWithinMinAndMax) {
  FakeDevice device(1'000'000);
  auto gate = make_gate(device, options(2, 6));
  EXPECT_EQ(gate->stats().concurrency_cap, 6);
  gate->set_concurrency_cap(3);
  EXPECT_EQ(gate->stats().concurrency_cap, 3);
  std::vector<AdmissionGate::Ticket> held;
  for (int i = 0; i < 3; ++i) {
    auto ticket = gate->try_admit(10);
    ASSERT_TRUE(ticket.has_value()) << i;
    EXPECT_EQ(ticket->level(), i + 1) << "the tasks in flight once it was admitted";
    held.push_back(std::move(*ticket));
  }
  EXPECT_FALSE(gate->try_admit(10).has_value()) << "memory has room, the cap does not";
  gate->set_concurrency_cap(1);  // below MIN: clamped to MIN
  EXPECT_EQ(gate->stats().concurrency_cap, 2);
  gate->set_concurrency_cap(100);  // above MAX: clamped to MAX
  EXPECT_EQ(gate->stats().concurrency_cap, 6);
  EXPECT_TRUE(gate->try_admit(10).has_value());
}

TEST(AdmissionGateTest, RaisingTheCapWakesAWaiter) {
  FakeDevice device(1'000'000);
  auto gate = make_gate(device, options(1, 4));
  gate->set_concurrency_cap(1);
  auto first = gate->try_admit(10);
  ASSERT_TRUE(first.has_value());
  std::atomic<bool> admitted{false};
  std::thread waiter([&] {
    auto ticket = gate->admit(10);
    admitted = ticket.ok();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(admitted.load());
  gate->set_concurrency_cap(2);
  waiter.join();
  EXPECT_TRUE(admitted.load());
}

TEST(AdmissionGateTest, MinIsAlwaysAdmittedEvenPastTheBudget) {
  FakeDevice device(1000);
  auto gate = make_gate(device, options(2, 10));
  auto a = gate->try_admit(5000);
  auto b = gate->try_admit(5000);
  EXPECT_TRUE(a && b);
  EXPECT_FALSE(gate->try_admit(1));  // two in flight, way past the limit
}

TEST(AdmissionGateTest, MinZeroStillRunsAnOversizedTaskAlone) {
  FakeDevice device(1000);
  auto gate = make_gate(device, options(0, 10));
  auto a = gate->try_admit(5000);
  EXPECT_TRUE(a);  // an empty gate admits, or this task would wait forever
  EXPECT_FALSE(gate->try_admit(1));
}

TEST(AdmissionGateTest, MaxIsNeverExceeded) {
  FakeDevice device(1'000'000);
  auto gate = make_gate(device, options(1, 3));
  std::vector<AdmissionGate::Ticket> held;
  for (int i = 0; i < 3; ++i) {
    auto t = gate->try_admit(1);
    ASSERT_TRUE(t);
    held.push_back(std::move(*t));
  }
  EXPECT_FALSE(gate->try_admit(1));
  EXPECT_EQ(gate->stats().peak_in_flight, 3);
}

TEST(AdmissionGateTest, ResidentWeightsTakeRoomUntilUnloaded) {
  FakeDevice device(1000);
  auto gate = make_gate(device, options(1, 10));
  gate->register_resident("foreground", 500);
  gate->register_resident("people", 200);
  auto a = gate->try_admit(200);
  ASSERT_TRUE(a);
  EXPECT_FALSE(gate->try_admit(200));      // 700 + 200 + 200 > 1000
  gate->register_resident("people", 100);  // replaced, not added
  EXPECT_EQ(gate->stats().resident_bytes, 600);
  auto b = gate->try_admit(200);
  EXPECT_TRUE(b);
  gate->unregister_resident("foreground");
  EXPECT_EQ(gate->stats().resident_bytes, 100);
  EXPECT_TRUE(gate->try_admit(500));
}

TEST(AdmissionGateTest, TicketsReleaseOnExceptionAndMove) {
  FakeDevice device(1000);
  auto gate = make_gate(device, options(1, 10));
  try {
    auto t = gate->try_admit(300);
    ASSERT_TRUE(t);
    EXPECT_EQ(gate->stats().in_flight, 1);
    throw std::runtime_error("task blew up");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(gate->stats().in_flight, 0);
  EXPECT_EQ(gate->stats().in_flight_bytes, 0);

  auto a = gate->try_admit(100);
  ASSERT_TRUE(a);
  AdmissionGate::Ticket moved(std::move(*a));
  EXPECT_FALSE(a->valid());
  EXPECT_TRUE(moved.valid());
  EXPECT_EQ(gate->stats().in_flight, 1);  // moving does not release
  auto b = gate->try_admit(200);
  ASSERT_TRUE(b);
  moved = std::move(*b);  // the 100-byte ticket is released by the assignment
  EXPECT_EQ(gate->stats().in_flight, 1);
  EXPECT_EQ(gate->stats().in_flight_bytes, 200);
  moved.release();
  moved.release();  // idempotent
  EXPECT_EQ(gate->stats().in_flight, 0);
}

TEST(AdmissionGateTest, BudgetFollowsOtherProcessesLiveButRateLimited) {
  FakeDevice device(1000);
  FakeClock clock;
  AdmissionGateOptions o = options(1, 10);
  o.budget_refresh_interval = std::chrono::milliseconds(100);
  o.now = clock.fn();
  auto gate = make_gate(device, o);
  const int reads_at_start = device.snapshot_calls();

  // Our own allocations are ours, not another process's: they do not shrink the budget.
  auto ours = device.allocate(400);
  ASSERT_TRUE(ours.ok());
  clock.advance(std::chrono::milliseconds(100));
  auto a = gate->try_admit(300);
  ASSERT_TRUE(a);
  EXPECT_EQ(gate->stats().budget_bytes, 1000);

  // A neighbour grows. Within the refresh interval the gate still uses its last reading...
  device.set_other_process_bytes(500);
  auto b = gate->try_admit(100);
  EXPECT_TRUE(b);
  EXPECT_EQ(device.snapshot_calls() - reads_at_start, 1);  // one read so far
  b.reset();

  // ...and after it, the neighbour throttles us instead of OOMing us.
  clock.advance(std::chrono::milliseconds(100));
  EXPECT_FALSE(gate->try_admit(300));  // budget 500: 300 + 300 > 500
  EXPECT_EQ(gate->stats().budget_bytes, 500);
  EXPECT_TRUE(gate->try_admit(200));

  // The neighbour leaves; the next reading gives the room back.
  device.set_other_process_bytes(0);
  clock.advance(std::chrono::milliseconds(100));
  EXPECT_TRUE(gate->try_admit(600));
  EXPECT_EQ(device.snapshot_calls() - reads_at_start, 3);
}

TEST(AdmissionGateTest, ProcessCapBoundsTheBudget) {
  FakeDevice device(1000);
  ASSERT_TRUE(device.set_process_limit(400).ok());
  auto gate = make_gate(device, options(1, 10));
  EXPECT_EQ(gate->stats().budget_bytes, 400);
  auto a = gate->try_admit(300);
  EXPECT_TRUE(a);
  EXPECT_FALSE(gate->try_admit(200));
}

TEST(AdmissionGateTest, BlockingAdmitIsFifoAndTheBigTaskIsNotStarved) {
  FakeDevice device(1000);
  auto gate = make_gate(device, options(1, 20));
  std::vector<AdmissionGate::Ticket> small;
  for (int i = 0; i < 9; ++i) small.push_back(std::move(*gate->try_admit(100)));  // 900

  std::atomic<int> order{0};
  std::atomic<int> big_rank{-1};
  std::atomic<int> next_rank{-1};
  std::jthread big([&] {
    auto t = gate->admit(500);
    ASSERT_TRUE(t.ok());
    big_rank = order++;
  });
  wait_for([&] { return gate->stats().waiting == 1; });

  // 50 bytes would fit (950 <= 1000), but the big task is queued first: no barging.
  EXPECT_FALSE(gate->try_admit(50));
  std::jthread next([&] {
    auto t = gate->admit(50);
    ASSERT_TRUE(t.ok());
    next_rank = order++;
  });
  wait_for([&] { return gate->stats().waiting == 2; });

  // A stream of small tasks keeps arriving and finishing; none gets past the big one.
  for (int i = 0; i < 4; ++i) {
    EXPECT_FALSE(gate->try_admit(10));
    small.pop_back();  // in flight 800, 700, 600, 500
  }
  big.join();  // 500 + 500 fits: the head goes first
  next.join();
  EXPECT_EQ(big_rank.load(), 0);
  EXPECT_EQ(next_rank.load(), 1);
  const GateStats s = gate->stats();
  EXPECT_EQ(s.waits_total, 2u);
  EXPECT_EQ(s.waiting, 0);
}

TEST(AdmissionGateTest, SlotsAreDistinctAndTheLastReleasedIsReusedFirst) {
  FakeDevice device(1000);
  auto gate = make_gate(device, options(1, 3));
  auto a = gate->try_admit(10);
  auto b = gate->try_admit(10);
  auto c = gate->try_admit(10);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->slot(), 0);  // a lone task always runs on slot 0
  EXPECT_EQ(b->slot(), 1);
  EXPECT_EQ(c->slot(), 2);
  b->release();
  a->release();
  auto d = gate->try_admit(10);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->slot(), 0);  // released last, warmest cache
  AdmissionGate::Ticket moved = std::move(*d);
  EXPECT_EQ(moved.slot(), 0);
  auto e = gate->try_admit(10);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->slot(), 1);
}

TEST(AdmissionGateTest, PropertyNoTwoTicketsInFlightShareASlot) {
  FakeDevice device(1 << 20);
  auto gate = make_gate(device, options(1, 4));
  std::mutex m;
  std::vector<int> holders(4, 0);
  std::atomic<bool> clash{false};
  std::vector<std::jthread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) {
        auto ticket = gate->admit(100);
        ASSERT_TRUE(ticket.ok());
        const int slot = ticket->slot();
        {
          std::lock_guard lock(m);
          if (slot < 0 || slot >= 4 || holders[slot]++ != 0) clash = true;
        }
        std::this_thread::yield();
        std::lock_guard lock(m);
        --holders[slot];
      }
    });
  }
  threads.clear();
  EXPECT_FALSE(clash.load());
}

TEST(AdmissionGateTest, ReadmitQueuesAheadOfEveryWaiter) {
  FakeDevice device(1000);
  auto gate = make_gate(device, options(1, 20));
  auto held = gate->try_admit(900);
  ASSERT_TRUE(held);

  std::atomic<int> order{0};
  std::atomic<int> waiter_rank{-1};
  std::atomic<int> returner_rank{-1};
  std::jthread waiter([&] {
    auto t = gate->admit(500);
    ASSERT_TRUE(t.ok());
    waiter_rank = order++;
  });
  wait_for([&] { return gate->stats().waiting == 1; });
  // A task that backed off after an OOM comes back: it arrived before the waiter.
  std::jthread returner([&] {
    auto t = gate->readmit(600);
    ASSERT_TRUE(t.ok());
    returner_rank = order++;
    t->release();
  });
  wait_for([&] { return gate->stats().waiting == 2; });
  held->release();  // either fits alone, not both: the head goes first
  returner.join();
  waiter.join();
  EXPECT_EQ(returner_rank.load(), 0);
  EXPECT_EQ(waiter_rank.load(), 1);
  EXPECT_EQ(gate->stats().readmitted_total, 1u);
}

// Issue 11, item 9: two tasks back from an OOM back-off are readmitted in the order they came
// back (the header promised FIFO; push_front made it LIFO).
TEST(AdmissionGateTest, ReadmissionsAreFifoAmongThemselves) {
  FakeDevice device(1000);
  auto gate = make_gate(device, options(1, 20));
  auto held = gate->try_admit(900);
  ASSERT_TRUE(held);
  std::atomic<int> order{0};
  std::atomic<int> first_rank{-1};
  std::atomic<int> second_rank{-1};
  std::jthread first([&] {
    auto t = gate->readmit(600);
    ASSERT_TRUE(t.ok());
    first_rank = order++;
    t->release();
  });
  wait_for([&] { return gate->stats().waiting == 1; });
  std::jthread second([&] {
    auto t = gate->readmit(600);
    ASSERT_TRUE(t.ok());
    second_rank = order++;
    t->release();
  });
  wait_for([&] { return gate->stats().waiting == 2; });
  held->release();  // one at a time fits: the first to come back goes first
  first.join();
  second.join();
  EXPECT_EQ(first_rank.load(), 0);
  EXPECT_EQ(second_rank.load(), 1);
}

TEST(AdmissionGateTest, AdmitUntilTimesOutAndLeavesTheQueue) {
  FakeDevice device(1000);
  auto gate = make_gate(device, options(1, 10));
  auto held = gate->try_admit(900);
  ASSERT_TRUE(held);
  auto late = gate->admit_until(500, std::chrono::steady_clock::now());
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.status().code(), ErrorCode::kUnavailable);
  const GateStats s = gate->stats();
  EXPECT_EQ(s.timed_out_total, 1u);
  EXPECT_EQ(s.waiting, 0);
  EXPECT_TRUE(gate->try_admit(100));  // the abandoned waiter no longer blocks anyone
}

TEST(AdmissionGateTest, StopTokenCancelsABlockedAdmit) {
  FakeDevice device(1000);
  auto gate = make_gate(device, options(1, 10));
  auto held = gate->try_admit(900);
  ASSERT_TRUE(held);
  std::stop_source stop;
  std::atomic<bool> cancelled{false};
  std::jthread waiter([&] {
    auto t = gate->admit(500, stop.get_token());
    cancelled = !t.ok() && t.status().code() == ErrorCode::kUnavailable;
  });
  wait_for([&] { return gate->stats().waiting == 1; });
  stop.request_stop();
  waiter.join();
  EXPECT_TRUE(cancelled.load());
  EXPECT_EQ(gate->stats().cancelled_total, 1u);
  EXPECT_EQ(gate->stats().waiting, 0);
  EXPECT_EQ(gate->stats().in_flight, 1);
}

TEST(AdmissionGateTest, WaiterWakesWhenTheNeighbourLeaves) {
  FakeDevice device(1000);
  FakeClock clock;
  AdmissionGateOptions o = options(1, 10);
  o.now = clock.fn();
  auto gate = make_gate(device, o);
  device.set_other_process_bytes(800);
  clock.advance(std::chrono::seconds(1));
  gate->refresh_budget();
  auto held = gate->try_admit(100);
  ASSERT_TRUE(held);
  std::jthread waiter([&] { ASSERT_TRUE(gate->admit(300).ok()); });
  wait_for([&] { return gate->stats().waiting == 1; });
  device.set_other_process_bytes(0);
  gate->refresh_budget();  // what the memory monitor (or the waiter's poll) does
  waiter.join();
  EXPECT_EQ(gate->stats().admitted_total, 2u);
}

TEST(AdmissionGateTest, AimdShrinksOnOomAndRegrowsAfterSuccesses) {
  FakeDevice device(1000);
  AdmissionGateOptions o = options(1, 10);
  o.successes_per_increase = 3;
  o.increase_step_bytes = 100;
  auto gate = make_gate(device, o);

  std::vector<AdmissionGate::Ticket> held;
  for (int i = 0; i < 4; ++i) held.push_back(std::move(*gate->try_admit(200)));  // 800
  gate->on_out_of_memory();
  // The OOM proves 800 in flight did not fit: cap = 800 × 0.7.
  EXPECT_EQ(gate->stats().aimd_cap_bytes, 560);
  EXPECT_EQ(gate->stats().limit_bytes, 560);
  gate->on_out_of_memory();  // same cohort, no admission since: no second decrease
  EXPECT_EQ(gate->stats().shrinks_total, 1u);
  EXPECT_EQ(gate->stats().oom_signals_total, 2u);
  held.clear();

  held.push_back(std::move(*gate->try_admit(200)));
  held.push_back(std::move(*gate->try_admit(200)));
  EXPECT_FALSE(gate->try_admit(200));  // 600 > 560
  gate->on_out_of_memory();            // a new cohort: min(560, 400) × 0.7 = 280
  EXPECT_EQ(gate->stats().aimd_cap_bytes, 280);
  held.clear();

  // Floors at what MIN tasks need, 1 × the largest task: min(280, 200) × 0.7 = 140 → 200.
  held.push_back(std::move(*gate->try_admit(200)));
  gate->on_out_of_memory();
  EXPECT_EQ(gate->stats().aimd_cap_bytes, 200);
  held.clear();

  // Additive increase: +100 per 3 successes, then the cap disappears at the threshold budget.
  for (int i = 0; i < 2; ++i) gate->on_success();
  EXPECT_EQ(gate->stats().aimd_cap_bytes, 200);
  gate->on_success();
  EXPECT_EQ(gate->stats().aimd_cap_bytes, 300);
  for (int i = 0; i < 3 * 6; ++i) gate->on_success();  // 400 ... 900
  EXPECT_EQ(gate->stats().aimd_cap_bytes, 900);
  for (int i = 0; i < 3; ++i) gate->on_success();
  EXPECT_FALSE(gate->stats().aimd_cap_bytes.has_value());
  EXPECT_EQ(gate->stats().limit_bytes, 1000);
  EXPECT_EQ(gate->stats().increases_total, 8u);
}

TEST(AdmissionGateTest, OomResetsTheSuccessStreak) {
  FakeDevice device(1000);
  AdmissionGateOptions o = options(1, 10);
  o.successes_per_increase = 3;
  o.increase_step_bytes = 100;
  auto gate = make_gate(device, o);
  {
    auto t = gate->try_admit(500);
    gate->on_out_of_memory();  // 500 × 0.7 = 350, floored at the 500-byte task: 500
  }
  gate->on_success();
  gate->on_success();
  {
    auto t = gate->try_admit(100);
    gate->on_out_of_memory();  // min(500, 100) × 0.7 = 70, floored at 500
  }
  EXPECT_EQ(gate->stats().aimd_cap_bytes, 500);
  gate->on_success();  // streak restarted: 1 of 3
  EXPECT_EQ(gate->stats().aimd_cap_bytes, 500);
}

// Randomised property test: many threads, images and video frames through one gate. Each admitted
// task adds its bytes to a shared tally after admission and removes them before releasing, so the
// tally never exceeds what the gate has in flight; whenever more than MIN tasks are in the tally,
// resident + tally must fit the limit, and never more than MAX tasks.
TEST(AdmissionGateTest, PropertyNeverAdmitsPastTheBudget) {
  constexpr int kThreads = 8;
  constexpr int kIterations = 400;
  constexpr int kMin = 2;
  constexpr int kMax = 6;
  FakeDevice device(10'000);
  auto gate = make_gate(device, options(kMin, kMax, 0.9));  // limit 9000
  gate->register_resident("weights", 1000);
  const std::int64_t limit = gate->stats().limit_bytes;
  ASSERT_EQ(limit, 9000);

  std::atomic<std::int64_t> tally_bytes{0};
  std::atomic<int> tally_count{0};
  std::atomic<int> violations{0};
  std::atomic<int> admitted_images{0};
  std::atomic<int> admitted_frames{0};
  std::vector<std::jthread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(1234 + t);
      std::uniform_int_distribution<std::int64_t> size(100, 4000);
      std::uniform_int_distribution<int> coin(0, 3);
      const bool video = t % 2 == 1;  // odd threads fan a video message out into frames
      for (int i = 0; i < kIterations; ++i) {
        // Some tasks are bigger than the whole room: they may only run under the MIN rule.
        const std::int64_t bytes = coin(rng) == 0 ? 8500 : size(rng);
        std::optional<AdmissionGate::Ticket> ticket;
        if (coin(rng) == 0) {
          ticket = gate->try_admit(bytes);
          if (!ticket) continue;
        } else {
          auto admitted = gate->admit(bytes);
          if (!admitted.ok()) {
            ++violations;
            continue;
          }
          ticket.emplace(std::move(admitted).value());
        }
        const int count = ++tally_count;
        const std::int64_t sum = tally_bytes += bytes;
        if (count > kMax || (count > kMin && 1000 + sum > limit)) ++violations;
        ++(video ? admitted_frames : admitted_images);
        for (int y = 0; y < coin(rng); ++y) std::this_thread::yield();
        tally_bytes -= bytes;
        --tally_count;
      }
    });
  }
  threads.clear();  // joins
  EXPECT_EQ(violations.load(), 0);
  const GateStats s = gate->stats();
  EXPECT_EQ(s.in_flight, 0);
  EXPECT_EQ(s.in_flight_bytes, 0);
  EXPECT_EQ(s.waiting, 0);
  EXPECT_LE(s.peak_in_flight, kMax);
  EXPECT_GT(admitted_frames.load(), 0);
  EXPECT_GT(admitted_images.load(), 0);
  EXPECT_EQ(s.admitted_total,
            static_cast<std::uint64_t>(admitted_frames.load() + admitted_images.load()));
}

TEST(AdmissionGateTest, ImagesAndVideoFramesShareOneBudget) {
  FakeDevice device(1000);
  auto gate = make_gate(device, options(1, 10));
  // A product image takes most of the card; the next video keyframe waits for it, and vice versa.
  auto image = gate->try_admit(700);
  ASSERT_TRUE(image);
  EXPECT_FALSE(gate->try_admit(400));  // a keyframe
  image->release();
  auto frame = gate->try_admit(400);
  ASSERT_TRUE(frame);
  EXPECT_FALSE(gate->try_admit(700));  // the next image
}

}  // namespace
}  // namespace segmentor

namespace segmentor {
namespace {

// GPU_MEMORY_THRESHOLD=1.0, the rollback switch (Note [Gate arithmetic], count only): bytes decide
// nothing, MAX still does.
TEST(AdmissionGateCountOnlyTest, AdmitsByCountWhateverTheBytes) {
  FakeDevice device(1000);
  AdmissionGateOptions o = options(1, 3);
  o.count_only = true;
  auto gate = make_gate(device, o);
  EXPECT_TRUE(gate->stats().count_only);
  std::vector<AdmissionGate::Ticket> held;
  for (int i = 0; i < 3; ++i) {
    auto ticket = gate->try_admit(900);  // three times the whole card
    ASSERT_TRUE(ticket.has_value()) << "task " << i;
    held.push_back(std::move(*ticket));
  }
  EXPECT_FALSE(gate->try_admit(0));  // MAX = 3
  EXPECT_EQ(gate->stats().in_flight, 3);
  gate->on_out_of_memory();  // AIMD still shrinks the (reported) limit ...
  held.pop_back();
  EXPECT_TRUE(gate->try_admit(900).has_value());  // ... but does not decide admission
}

TEST(AdmissionGateCountOnlyTest, TheSameLoadWaitsWithTheGateOn) {
  FakeDevice device(1000);
  auto gate = make_gate(device, options(1, 3));
  EXPECT_FALSE(gate->stats().count_only);
  auto first = gate->try_admit(900);
  ASSERT_TRUE(first.has_value());
  EXPECT_FALSE(gate->try_admit(900));  // 1800 > 1000: bytes decide
}

TEST(AdmissionGateFloorTest, ReportsWhenOomsHoldTheLimitAtItsFloor) {
  FakeDevice device(1000);
  auto gate = make_gate(device, options(1, 10));
  EXPECT_FALSE(gate->stats().at_floor);
  std::vector<AdmissionGate::Ticket> held;
  held.push_back(std::move(*gate->try_admit(300)));
  held.push_back(std::move(*gate->try_admit(300)));
  gate->on_out_of_memory();  // 600 × 0.7 = 420 > floor 300
  EXPECT_FALSE(gate->stats().at_floor);
  held.clear();
  held.push_back(std::move(*gate->try_admit(300)));
  gate->on_out_of_memory();  // min(420, 300) × 0.7 = 210 -> floor 300
  EXPECT_EQ(gate->stats().aimd_cap_bytes, 300);
  EXPECT_TRUE(gate->stats().at_floor);
}

}  // namespace
}  // namespace segmentor
