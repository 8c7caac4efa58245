// Note [Warm every slot before ready]: every model's first call happens on every slot thread of a
// GPU lane before the first task, under the lane's own gate; failures are counted, not fatal.
#include "runtime/slot_warmup.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "memory/admission_gate.h"
#include "memory/fake_device.h"

namespace segmentor {
namespace {

// Records the threads it was called on; can fail or throw; holds its bytes on the fake device
// while it runs, so the gate's arithmetic is what bounds the warm-up.
class ThreadRecordingModel : public MaskModel {
 public:
  ThreadRecordingModel(std::string name, FakeDevice* device, std::int64_t bytes)
      : device_(device), bytes_(bytes) {
    info_.name = std::move(name);
    info_.device = "fake:0";
  }
  const ModelInfo& info() const override { return info_; }
  Result<Mask> segment(const RgbImage& image) override {
    if (throws) throw std::runtime_error("model bug");
    if (fails) return Status(ErrorCode::kOutOfMemory, "no room");
    auto held = device_->allocate(bytes_);
    if (!held.ok()) return held.status();
    {
      std::lock_guard lock(mutex_);
      threads_.insert(std::this_thread::get_id());
      if (first_segment == Clock::time_point{}) first_segment = Clock::now();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // overlap, as real calls do
    device_->free(*held);
    return Mask::zeros(image.width, image.height);
  }
  int max_batch() const override { return max_batch_; }
  bool passes_on_own_thread() const override { return max_batch_ > 1 || own_thread; }
  bool pads_batches() const override { return padded; }
  Status warm_batches(int up_to) override {
    warm_start = Clock::now();
    warmed_up_to = up_to;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // long enough to overlap
    warm_end = Clock::now();
    return Status::Ok();
  }
  std::set<std::thread::id> threads() const {
    std::lock_guard lock(mutex_);
    return threads_;
  }
  bool fails = false;
  bool throws = false;
  int max_batch_ = 1;
  bool own_thread = false;  // Note [Dear first calls on a new thread]: kept there at batch 1
  bool padded = false;      // Note [Flat batches run padded]: one shape
  int warmed_up_to = 0;     // warm_batches' argument; 0 = not called
  using Clock = std::chrono::steady_clock;
  Clock::time_point warm_start, warm_end, first_segment;  // zero: never

 private:
  FakeDevice* device_;
  std::int64_t bytes_;
  ModelInfo info_;
  mutable std::mutex mutex_;
  std::set<std::thread::id> threads_;
};

struct FakeLane {
  DeviceLane lane;
  FakeDevice& device;  // the lane's own memory view
  ThreadRecordingModel* foreground = nullptr;
  ThreadRecordingModel* people = nullptr;

  // memory_threshold 1.0 admits by count alone (the rollback mode); below it, by bytes.
  // `others`: bytes another process holds on the card from the start.
  explicit FakeLane(int max_concurrent, std::int64_t task_bytes = 100, double threshold = 1.0,
                    std::int64_t others = 0)
      : device(*new FakeDevice(1000)) {
    lane.device.reset(&device);
    device.set_other_process_bytes(others);
    AdmissionGateOptions options;
    options.max_concurrent = max_concurrent;
    options.memory_threshold = threshold;
    lane.gate = AdmissionGate::create(options, &device).value();
    lane.lane = std::make_unique<ModelSet>();
    lane.lane->name = "fake:0";
    auto fg = std::make_unique<ThreadRecordingModel>("fg", &device, task_bytes);
    auto pp = std::make_unique<ThreadRecordingModel>("people", &device, task_bytes);
    foreground = fg.get();
    people = pp.get();
    lane.lane->foreground = std::move(fg);
    lane.lane->people = std::move(pp);
  }
};

// Whether two models' warm_batches intervals overlapped: they were warmed side by side.
bool warmed_side_by_side(const ThreadRecordingModel& a, const ThreadRecordingModel& b) {
  return a.warm_start < b.warm_end && b.warm_start < a.warm_end;
}

TEST(SlotWarmupTest, EveryModelRunsOnceOnEverySlotThread) {
  FakeLane fake(3);
  const WarmupReport report = warm_slots(fake.lane, 3);
  EXPECT_EQ(report.slots, 3);
  EXPECT_EQ(report.failures, 0);
  EXPECT_EQ(fake.lane.slot_threads->threads_started(), 3);
  EXPECT_EQ(fake.foreground->threads().size(), 3u);
  EXPECT_EQ(fake.people->threads().size(), 3u);
  EXPECT_EQ(fake.foreground->threads().count(std::this_thread::get_id()), 0u);
  EXPECT_EQ(fake.lane.gate->stats().in_flight, 0);  // every ticket given back
  // Each model's calls on the slots are timed: the fake's take at least their 20 ms sleep.
  ASSERT_EQ(report.mean_call_seconds.size(), 2u);
  EXPECT_GE(report.mean_call_seconds.at("fg"), 0.02);
  EXPECT_GE(report.mean_call_seconds.at("people"), 0.02);
}

// Batch sizes are warmed under tickets for as many tasks as the batch holds: as many as the gate
// admits at once (below, memory fits only a few tasks of 100 B: another process holds 500 B of 1000
// B).
TEST(SlotWarmupTest, BatchSizesAreWarmedWithinWhatTheGateAdmits) {
  FakeLane fake(8);
  fake.foreground->max_batch_ = 8;
  WarmupReport report = warm_slots(fake.lane, 2);
  EXPECT_EQ(report.batch_size, 8);
  EXPECT_EQ(fake.foreground->warmed_up_to, 8);
  EXPECT_EQ(fake.people->warmed_up_to, 0);  // unbatched: not asked
  EXPECT_EQ(fake.lane.gate->stats().in_flight, 0);
  EXPECT_GE(report.batch_seconds, 0.0);  // the log line splits the time into slots and batches
  EXPECT_LE(report.batch_seconds, report.seconds);
  EXPECT_GT(report.first_slot_seconds, 0.0);  // a slot was warmed, so one finished first
  // The models held 100 B each on the fake device while they ran; its cache keeps them reserved.
  EXPECT_EQ(report.reserved_bytes_after, fake.device.snapshot().reserved_bytes);
  EXPECT_GE(report.reserved_bytes_after, 100);
  EXPECT_EQ(report.alloc_retries, 0);
  EXPECT_LE(report.first_slot_seconds, report.seconds - report.batch_seconds + 1e-9);

  FakeLane tight(8, 100, 0.9, 500);
  tight.foreground->max_batch_ = 8;
  tight.lane.calibration.add_measurement("fg", 1280, 720, 100);
  report = warm_slots(tight.lane, 2);
  EXPECT_GE(report.batch_size, 2);
  EXPECT_LT(report.batch_size, 8);
  EXPECT_EQ(tight.foreground->warmed_up_to, report.batch_size);
  EXPECT_EQ(tight.lane.gate->stats().in_flight, 0);
}

// Two batched models are warmed side by side, each under tickets of its own, and before any slot
// calls a model (the slots' concurrent calls would otherwise meet new batch sizes one at a time).
TEST(SlotWarmupTest, BatchedModelsWarmSideBySideBeforeTheSlots) {
  FakeLane fake(8);
  fake.foreground->max_batch_ = 4;
  fake.people->max_batch_ = 4;
  WarmupReport report = warm_slots(fake.lane, 2);
  EXPECT_EQ(fake.foreground->warmed_up_to, 4);
  EXPECT_EQ(fake.people->warmed_up_to, 4);
  EXPECT_EQ(report.batch_size, 4);
  EXPECT_TRUE(warmed_side_by_side(*fake.foreground, *fake.people));
  for (const ThreadRecordingModel* model : {fake.foreground, fake.people}) {
    EXPECT_NE(model->first_segment, ThreadRecordingModel::Clock::time_point{});
    EXPECT_GE(model->first_segment, fake.foreground->warm_end);
    EXPECT_GE(model->first_segment, fake.people->warm_end);
  }
  EXPECT_GE(report.batch_seconds, 0.05);
  EXPECT_EQ(fake.lane.gate->stats().in_flight, 0);

  // Room for three tasks: too few for two batches of two side by side, so one model after the
  // other, each with all three tickets.
  FakeLane tight(8, 100, 0.9, 600);
  tight.foreground->max_batch_ = 4;
  tight.people->max_batch_ = 4;
  tight.lane.calibration.add_measurement("fg", 1280, 720, 100);
  report = warm_slots(tight.lane, 2);
  EXPECT_EQ(tight.foreground->warmed_up_to, 3);
  EXPECT_EQ(tight.people->warmed_up_to, 3);
  EXPECT_EQ(report.batch_size, 3);
  EXPECT_FALSE(warmed_side_by_side(*tight.foreground, *tight.people));
  EXPECT_EQ(tight.lane.gate->stats().in_flight, 0);
}

// Note [Dear first calls on a new thread]: a model kept on a thread of its own at batch 1 is
// warmed there, with one ticket, beside the batched models, which share the others; with too few
// tickets for both, one after the other.
TEST(SlotWarmupTest, AModelKeptOnItsOwnThreadWarmsThereBesideTheBatchedOnes) {
  FakeLane fake(4);
  fake.foreground->max_batch_ = 2;
  fake.people->own_thread = true;
  WarmupReport report = warm_slots(fake.lane, 4);
  EXPECT_EQ(fake.people->warmed_up_to, 1);
  EXPECT_EQ(fake.foreground->warmed_up_to, 2);
  EXPECT_EQ(report.batch_size, 2);
  EXPECT_TRUE(warmed_side_by_side(*fake.foreground, *fake.people));
  EXPECT_GE(fake.people->first_segment, fake.people->warm_end);
  EXPECT_EQ(fake.lane.gate->stats().in_flight, 0);

  // Room for two tasks: the batched model gets both, then the other runs its batch of one.
  FakeLane tight(8, 100, 0.9, 700);
  tight.foreground->max_batch_ = 4;
  tight.people->own_thread = true;
  tight.lane.calibration.add_measurement("fg", 1280, 720, 100);
  report = warm_slots(tight.lane, 2);
  EXPECT_EQ(tight.foreground->warmed_up_to, 2);
  EXPECT_EQ(tight.people->warmed_up_to, 1);
  EXPECT_LE(tight.foreground->warm_end, tight.people->warm_start);
  EXPECT_EQ(tight.lane.gate->stats().in_flight, 0);

  // Alone, it is still warmed at batch 1.
  FakeLane alone(4);
  alone.people->own_thread = true;
  report = warm_slots(alone.lane, 2);
  EXPECT_EQ(alone.people->warmed_up_to, 1);
  EXPECT_EQ(alone.foreground->warmed_up_to, 0);
  EXPECT_EQ(report.batch_size, 1);
}

// Note [Flat batches run padded]: a padded model has one shape, warmed with one pass and one
// ticket, beside a batched model that gets the other tickets.
TEST(SlotWarmupTest, APaddedModelWarmsOneShapeBesideTheBatchedOnes) {
  FakeLane fake(4);
  fake.foreground->max_batch_ = 2;
  fake.people->max_batch_ = 2;
  fake.people->padded = true;
  warm_slots(fake.lane, 4);
  EXPECT_EQ(fake.people->warmed_up_to, 1);
  EXPECT_EQ(fake.foreground->warmed_up_to, 2);
  EXPECT_TRUE(warmed_side_by_side(*fake.foreground, *fake.people));
  EXPECT_EQ(fake.lane.gate->stats().in_flight, 0);
}

TEST(SlotWarmupTest, FailuresAreCountedAndEndNothing) {
  FakeLane fake(2);
  fake.people->fails = true;
  WarmupReport report = warm_slots(fake.lane, 2);
  EXPECT_EQ(report.slots, 0);
  EXPECT_EQ(report.failures, 2);
  fake.people->fails = false;
  fake.foreground->throws = true;
  report = warm_slots(fake.lane, 2);
  EXPECT_EQ(report.failures, 2);
  EXPECT_EQ(fake.lane.gate->stats().in_flight, 0);
}

TEST(SlotWarmupTest, ASerialisedLaneHasNoSlotsToWarm) {
  FakeLane fake(2);
  fake.lane.lane->serialize = true;  // the CPU lane
  const WarmupReport report = warm_slots(fake.lane, 2);
  EXPECT_EQ(report.slots + report.failures, 0);
  EXPECT_EQ(fake.lane.slot_threads->threads_started(), 0);
}

}  // namespace
}  // namespace segmentor
