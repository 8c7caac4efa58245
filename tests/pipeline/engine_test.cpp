#include "pipeline/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "fake_mask_model.h"
#include "memory/fake_device.h"
#include "support/temp_dir.h"

namespace segmentor {
namespace {

namespace fs = std::filesystem;
using testing::gray_image;
using testing::rect_mask;

// A model that takes `bytes` from the fake device for a few milliseconds, like a real forward
// pass, and records how many calls overlap. Thread-safe, like the real models.
class DeviceModel : public MaskModel {
 public:
  DeviceModel(FakeDevice* device, std::int64_t bytes, std::string name)
      : device_(device), bytes_(bytes) {
    info_.name = std::move(name);
    info_.device = device ? "fake:0" : "cpu";
  }
  const ModelInfo& info() const override { return info_; }
  Result<Mask> segment(const RgbImage& image) override {
    if (image.width == throw_on_width_.load()) throw std::runtime_error("model bug");
    const int now = ++active_;
    int seen = max_active_.load();
    while (now > seen && !max_active_.compare_exchange_weak(seen, now)) {
    }
    std::optional<FakeDevice::AllocationId> id;
    if (device_ != nullptr) {
      auto allocation = device_->allocate(bytes_);
      if (!allocation.ok()) {
        --active_;
        return allocation.status();
      }
      id = *allocation;
    }
    {
      std::lock_guard lock(slots_mutex_);
      threads_seen_.insert(std::this_thread::get_id());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (id) device_->free(*id);
    --active_;
    ++calls_;
    return rect_mask(image.width, image.height, 0, 0, image.width / 2, image.height);
  }
  int max_active() const { return max_active_; }
  // segment() throws for images this wide (a bug in a model or a library we did not wrap).
  void throw_on_width(int width) { throw_on_width_.store(width); }
  int calls() const { return calls_; }
  std::set<std::thread::id> threads_seen() const {
    std::lock_guard lock(slots_mutex_);
    return threads_seen_;
  }

 private:
  FakeDevice* device_;
  std::int64_t bytes_;
  ModelInfo info_;
  std::atomic<int> active_{0};
  std::atomic<int> max_active_{0};
  std::atomic<int> calls_{0};
  std::atomic<int> throw_on_width_{-1};
  mutable std::mutex slots_mutex_;
  std::set<std::thread::id> threads_seen_;  // threads segment() was called on
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("engine_test_" +
             std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fixtures::remove_tree(root_);
  }
  void TearDown() override { fixtures::remove_tree(root_); }

  void build(std::int64_t capacity, int max_concurrent, bool with_cpu_lane,
             std::function<void(std::chrono::nanoseconds)> backoff_sleep = {}) {
    device_ = std::make_unique<FakeDevice>(capacity);
    AdmissionGateOptions gate_options;
    gate_options.max_concurrent = max_concurrent;
    gate_options.memory_threshold = 1.0;
    gate_ = AdmissionGate::create(gate_options, device_.get()).value();
    RecoveryOptions recovery_options;
    recovery_options.backoff = {};  // no waiting in tests
    recovery_options.sleep = std::move(backoff_sleep);
    recovery_ = OomRecovery::create(recovery_options, device_.get(), gate_.get()).value();
    auto gpu_model = std::make_unique<DeviceModel>(device_.get(), kTaskBytes, "gpu-fg");
    gpu_model_ = gpu_model.get();
    gpu_lane_ = ModelSet{"fake:0", std::move(gpu_model), nullptr, false};
    if (with_cpu_lane) {
      auto cpu_model = std::make_unique<DeviceModel>(nullptr, 0, "cpu-fg");
      cpu_model_ = cpu_model.get();
      cpu_lane_ = ModelSet{"cpu", std::move(cpu_model), nullptr, true};
    }
    calibration_.add_measurement("gpu-fg", 64, 48, kTaskBytes);
    EngineOptions options;
    options.layout = MaskLayout{root_};
    options.max_concurrent = max_concurrent;
    engine_ = std::make_unique<Engine>(options, gpu_lane_, with_cpu_lane ? &cpu_lane_ : nullptr,
                                       *gate_, *recovery_, &calibration_, nullptr);
  }

  // Submits n tasks, alternating product images and video frames; waits; returns outcomes.
  std::vector<TaskOutcome> run_tasks(int n) {
    std::mutex m;
    std::vector<TaskOutcome> outcomes;
    for (int i = 0; i < n; ++i) {
      EngineTask task;
      task.kind = i % 2 == 0 ? AssetKind::kProductImage : AssetKind::kVideoFrame;
      task.id = "asset" + std::to_string(i);
      task.source = task.id + ".jpg";
      task.image = gray_image(64, 48);
      engine_->submit(std::move(task), [&](const EngineTask&, const TaskOutcome& outcome) {
        std::lock_guard lock(m);
        outcomes.push_back(outcome);
      });
    }
    engine_->wait_idle();
    return outcomes;
  }

  static constexpr std::int64_t kTaskBytes = 100;
  fs::path root_;
  std::unique_ptr<FakeDevice> device_;
  std::unique_ptr<AdmissionGate> gate_;
  std::unique_ptr<OomRecovery> recovery_;
  CalibrationTable calibration_;
  ModelSet gpu_lane_, cpu_lane_;
  DeviceModel* gpu_model_ = nullptr;
  DeviceModel* cpu_model_ = nullptr;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, ImagesAndFramesShareOneGateAndAllMasksAreWritten) {
  build(/*capacity=*/1'000'000, /*max_concurrent=*/3, /*with_cpu_lane=*/false);
  const auto outcomes = run_tasks(24);
  ASSERT_EQ(outcomes.size(), 24U);
  for (const auto& outcome : outcomes) {
    EXPECT_TRUE(outcome.status.ok()) << outcome.status.to_string();
    EXPECT_TRUE(fs::exists(outcome.paths.product)) << outcome.paths.product;
    EXPECT_EQ(outcome.predicted_bytes, kTaskBytes);
  }
  EXPECT_LE(gpu_model_->max_active(), 3);
  EXPECT_GE(gpu_model_->max_active(), 2) << "the engine should run tasks concurrently";
  EXPECT_TRUE(fs::exists(root_ / "masks_product/product_images/asset0.png"));
  EXPECT_TRUE(fs::exists(root_ / "masks_product/video_frames/asset1.png"));
}

TEST_F(EngineTest, TheGateKeepsTasksWithinTheDeviceSoNothingRunsOutOfMemory) {
  // Room for exactly two tasks' bytes; up to 6 would be admitted by count alone.
  build(/*capacity=*/2 * kTaskBytes, /*max_concurrent=*/6, /*with_cpu_lane=*/false);
  const auto outcomes = run_tasks(30);
  for (const auto& outcome : outcomes) EXPECT_TRUE(outcome.status.ok());
  EXPECT_LE(gpu_model_->max_active(), 2);
  EXPECT_EQ(recovery_->stats().oom_events, 0U);
}

TEST_F(EngineTest, AnOutOfMemoryIsRetriedAndTheFrameIsNotLost) {
  build(1'000'000, 2, false);
  device_->fail_every_nth(3);
  const auto outcomes = run_tasks(12);
  for (const auto& outcome : outcomes) {
    EXPECT_TRUE(outcome.status.ok()) << outcome.status.to_string();
  }
  EXPECT_GT(recovery_->stats().retries, 0U);
  EXPECT_EQ(recovery_->stats().failed_tasks, 0U);
}

TEST_F(EngineTest, GpuCallsRunOnOneThreadPerGateSlot) {
  build(1000, 2, false);  // 4 engine threads, 2 slots
  const auto outcomes = run_tasks(24);
  ASSERT_EQ(outcomes.size(), 24u);
  for (const auto& outcome : outcomes) EXPECT_TRUE(outcome.status.ok());
  // Note [GPU work runs on slot threads]: however many engine threads took tasks, the model saw
  // at most one thread per slot, and never the caller's.
  const std::set<std::thread::id> seen = gpu_model_->threads_seen();
  EXPECT_GE(seen.size(), 1u);
  EXPECT_LE(seen.size(), 2u);
  EXPECT_EQ(seen.count(std::this_thread::get_id()), 0u);
}

TEST_F(EngineTest, EnginesInTurnOnOneLaneReuseItsSlotThreads) {
  // Note [Slot threads outlive engines]: serve's engine, and each bench or soak round's, runs its
  // GPU calls on the device lane's slot threads, so per-thread LibTorch state that is never given
  // back (cuDNN's plan cache) is made once per slot per process, not once per engine.
  build(1000, 2, false);
  engine_.reset();
  SlotThreads lane_threads;
  LaneView view{&gpu_lane_, gate_.get(), recovery_.get(), &calibration_,
                nullptr,    nullptr,     &lane_threads};
  EngineOptions options;
  options.layout = MaskLayout{root_};
  options.max_concurrent = 2;
  for (int round = 0; round < 3; ++round) {
    engine_ = std::make_unique<Engine>(options, std::vector<LaneView>{view}, nullptr);
    const auto outcomes = run_tasks(12);
    ASSERT_EQ(outcomes.size(), 12u);
    for (const auto& outcome : outcomes) EXPECT_TRUE(outcome.status.ok());
    engine_.reset();
  }
  EXPECT_LE(lane_threads.threads_started(), 2);
  const std::set<std::thread::id> seen = gpu_model_->threads_seen();
  EXPECT_GE(seen.size(), 1u);
  EXPECT_LE(seen.size(), 2u);  // three engines, the same (at most two) threads
}

// Note [Worker threads for the GPU and for the codecs]: beyond a thread per GPU slot there is a
// thread per core for decoding and writing while every slot is busy (at least two, at most one
// per slot).
TEST(EngineWorkerThreads, EveryGpuSlotPlusAThreadPerCoreForTheCodecs) {
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  const auto codecs = [cores](int slots) { return std::max(2, std::min(cores, slots)); };
  EXPECT_EQ(default_worker_threads(1, 16), 16 + codecs(16));
  EXPECT_EQ(default_worker_threads(2, 4), 8 + codecs(8));
  EXPECT_LE(default_worker_threads(1, 4), 4 + 4);  // never more codec threads than slots
  EXPECT_GE(default_worker_threads(1, 4), 4 + 2);
  EXPECT_EQ(default_worker_threads(0, 0), 1 + 2);  // nonsense in, still a working engine
}

TEST_F(EngineTest, ABackingOffTaskHoldsNoTicketAndComesBackFirst) {
  std::vector<int> in_flight_while_sleeping;
  build(1000, 1, false, [&](std::chrono::nanoseconds) {
    in_flight_while_sleeping.push_back(gate_->stats().in_flight);
    device_->fail_always(false);  // the next attempt finds memory
  });
  device_->fail_always(true);
  const auto outcomes = run_tasks(1);
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_TRUE(outcomes[0].status.ok()) << outcomes[0].status.to_string();
  // Far below the budget, the first retry is at once, with the ticket kept (Note [Over-admission
  // or a passing OOM]); the second OOM backs off, and that is when the ticket goes back.
  EXPECT_EQ(outcomes[0].recovery.gpu_attempts, 3);
  // With MAX_CONCURRENT_IMAGES=1 a held ticket would have kept every other task out.
  EXPECT_EQ(in_flight_while_sleeping, std::vector<int>{0});
  const GateStats stats = gate_->stats();
  EXPECT_EQ(stats.readmitted_total, 1u);
  EXPECT_EQ(stats.in_flight, 0);
}

TEST_F(EngineTest, WhenRetriesRunOutTheCpuLaneMakesTheMasks) {
  build(1'000'000, 2, true);
  device_->fail_always(true);
  const auto outcomes = run_tasks(4);
  for (const auto& outcome : outcomes) {
    ASSERT_TRUE(outcome.status.ok()) << outcome.status.to_string();
    EXPECT_EQ(outcome.lane, "cpu");
    EXPECT_TRUE(outcome.recovery.used_cpu_fallback);
    EXPECT_TRUE(fs::exists(outcome.paths.product));
  }
  EXPECT_EQ(cpu_model_->calls(), 4);
  EXPECT_EQ(recovery_->stats().cpu_fallbacks, 4U);
}

TEST_F(EngineTest, WithoutACpuLaneExhaustedRetriesFailLoudlyNeverSilently) {
  build(1'000'000, 2, false);
  device_->fail_always(true);
  const auto outcomes = run_tasks(2);
  for (const auto& outcome : outcomes) {
    ASSERT_FALSE(outcome.status.ok());
    EXPECT_EQ(outcome.status.code(), ErrorCode::kOutOfMemory);
    EXPECT_FALSE(fs::exists(outcome.paths.product));
  }
}

// Issue 11, item 3: an exception in a task (here thrown on a slot thread) used to reach
// std::terminate. Now it is a failed, non-retryable outcome, and the lane's ticket comes back.
TEST_F(EngineTest, ATaskThatThrowsFailsAloneAndReleasesItsTicket) {
  build(1'000'000, 2, false);
  gpu_model_->throw_on_width(13);
  std::vector<TaskOutcome> outcomes;
  std::mutex m;
  auto collect = [&](const EngineTask&, const TaskOutcome& o) {
    std::lock_guard lock(m);
    outcomes.push_back(o);
  };
  engine_->submit({AssetKind::kProductImage, "poison", "p.jpg", gray_image(13, 13), {}}, collect);
  engine_->submit({AssetKind::kProductImage, "good", "g.jpg", gray_image(16, 16), {}}, collect);
  engine_->wait_idle();
  ASSERT_EQ(outcomes.size(), 2U);
  int threw = 0;
  for (const auto& o : outcomes) {
    if (o.threw) {
      ++threw;
      EXPECT_EQ(o.status.code(), ErrorCode::kInternal);
      EXPECT_NE(o.status.message().find("model bug"), std::string::npos) << o.status.to_string();
    } else {
      EXPECT_TRUE(o.status.ok()) << o.status.to_string();
    }
  }
  EXPECT_EQ(threw, 1);
  EXPECT_EQ(gate_->stats().in_flight, 0) << "the throwing task kept its ticket";
  // The engine still works.
  EXPECT_EQ(run_tasks(2).size(), 2U);
}

TEST_F(EngineTest, AnUnreadableFileFailsWithItsNameAndOthersCarryOn) {
  build(1'000'000, 2, false);
  std::vector<TaskOutcome> outcomes;
  std::mutex m;
  auto collect = [&](const EngineTask&, const TaskOutcome& o) {
    std::lock_guard lock(m);
    outcomes.push_back(o);
  };
  engine_->submit({AssetKind::kProductImage, "missing", root_ / "missing.jpg", std::nullopt, {}},
                  collect);
  engine_->submit({AssetKind::kProductImage, "good", "good.jpg", gray_image(8, 8), {}}, collect);
  engine_->submit({AssetKind::kProductImage, "../escape", "x.jpg", gray_image(8, 8), {}}, collect);
  engine_->wait_idle();
  ASSERT_EQ(outcomes.size(), 3U);
  int ok = 0;
  for (const auto& o : outcomes) {
    if (o.status.ok()) {
      ++ok;
    } else {
      EXPECT_TRUE(o.status.message().find("missing.jpg") != std::string::npos ||
                  o.status.code() == ErrorCode::kInvalidArgument)
          << o.status.to_string();
    }
  }
  EXPECT_EQ(ok, 1);
}

// Two GPUs: each with its own fake device, gate and ladder, as the runtime builds them.
class MultiLaneEngineTest : public ::testing::Test {
 protected:
  struct FakeGpu {
    std::unique_ptr<FakeDevice> device;
    std::unique_ptr<AdmissionGate> gate;
    std::unique_ptr<OomRecovery> recovery;
    CalibrationTable calibration;
    ModelSet lane;
    DeviceModel* model = nullptr;
  };

  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("multi_lane_engine_test_" +
             std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fixtures::remove_tree(root_);
  }
  void TearDown() override {
    engine_.reset();
    fixtures::remove_tree(root_);
  }

  // Each GPU has room for `tasks_per_gpu` tasks' bytes and admits up to `max_concurrent` by count.
  void build(int tasks_per_gpu, int max_concurrent, bool with_cpu_lane = false) {
    std::vector<LaneView> guarded;
    for (int i = 0; i < 2; ++i) {
      auto gpu = std::make_unique<FakeGpu>();
      gpu->device = std::make_unique<FakeDevice>(tasks_per_gpu * kTaskBytes);
      AdmissionGateOptions gate_options;
      gate_options.max_concurrent = max_concurrent;
      gate_options.memory_threshold = 1.0;
      gpu->gate = AdmissionGate::create(gate_options, gpu->device.get()).value();
      RecoveryOptions recovery_options;
      recovery_options.backoff = {};
      gpu->recovery =
          OomRecovery::create(recovery_options, gpu->device.get(), gpu->gate.get()).value();
      auto model = std::make_unique<DeviceModel>(gpu->device.get(), kTaskBytes, "fg");
      gpu->model = model.get();
      gpu->lane = ModelSet{"fake:" + std::to_string(i), std::move(model), nullptr, false};
      gpu->calibration.add_measurement("fg", 64, 48, kTaskBytes);
      guarded.push_back(
          {&gpu->lane, gpu->gate.get(), gpu->recovery.get(), &gpu->calibration, nullptr});
      gpus_.push_back(std::move(gpu));
    }
    if (with_cpu_lane) {
      cpu_lane_ =
          ModelSet{"cpu", std::make_unique<DeviceModel>(nullptr, 0, "cpu-fg"), nullptr, true};
    }
    EngineOptions options;
    options.layout = MaskLayout{root_};
    options.max_concurrent = max_concurrent;
    engine_ =
        std::make_unique<Engine>(options, std::move(guarded), with_cpu_lane ? &cpu_lane_ : nullptr);
  }

  std::map<std::string, int> run_tasks(int n, std::vector<TaskOutcome>* all = nullptr) {
    std::mutex m;
    std::map<std::string, int> by_lane;
    for (int i = 0; i < n; ++i) {
      EngineTask task{
          AssetKind::kVideoFrame, "frame" + std::to_string(i), "frame.jpg", gray_image(64, 48), {}};
      engine_->submit(std::move(task), [&](const EngineTask&, const TaskOutcome& outcome) {
        std::lock_guard lock(m);
        EXPECT_TRUE(outcome.status.ok()) << outcome.status.to_string();
        ++by_lane[outcome.lane];
        if (all != nullptr) all->push_back(outcome);
      });
    }
    engine_->wait_idle();
    return by_lane;
  }

  static constexpr std::int64_t kTaskBytes = 100;
  fs::path root_;
  std::vector<std::unique_ptr<FakeGpu>> gpus_;
  ModelSet cpu_lane_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(MultiLaneEngineTest, TasksSpreadOverBothGpusAndEachStaysWithinItsOwnMemory) {
  build(/*tasks_per_gpu=*/2, /*max_concurrent=*/6);
  const auto by_lane = run_tasks(60);
  EXPECT_EQ(by_lane.at("fake:0") + by_lane.at("fake:1"), 60);
  EXPECT_GE(by_lane.at("fake:0"), 10) << "the picker should share tasks out";
  EXPECT_GE(by_lane.at("fake:1"), 10) << "the picker should share tasks out";
  for (const auto& gpu : gpus_) {
    EXPECT_LE(gpu->model->max_active(), 2) << gpu->lane.name << " ran past its own budget";
    EXPECT_EQ(gpu->recovery->stats().oom_events, 0u);
  }
  const int both = gpus_[0]->gate->stats().peak_in_flight + gpus_[1]->gate->stats().peak_in_flight;
  EXPECT_GE(both, 3) << "two GPUs should run more tasks at once than one";
}

TEST_F(MultiLaneEngineTest, AGpuThatAnotherProcessFillsGetsNoNewTasks) {
  build(/*tasks_per_gpu=*/2, /*max_concurrent=*/2);
  // Another process takes all of fake:0. Its empty gate would still admit one task (MIN' = 1),
  // which would run out of memory there: Note [Picking a lane] sends everything to fake:1.
  gpus_[0]->device->set_other_process_bytes(2 * kTaskBytes);
  gpus_[0]->gate->refresh_budget();
  const auto by_lane = run_tasks(20);
  EXPECT_EQ(by_lane.count("fake:0"), 0u) << "the full GPU was given work while the other had room";
  EXPECT_EQ(by_lane.at("fake:1"), 20);
  EXPECT_EQ(gpus_[0]->recovery->stats().oom_events, 0u);
}

TEST_F(MultiLaneEngineTest, AnOutOfMemoryIsRecoveredOnItsOwnLane) {
  build(/*tasks_per_gpu=*/4, /*max_concurrent=*/2);
  gpus_[1]->device->fail_every_nth(2);
  const auto by_lane = run_tasks(20);
  EXPECT_EQ(by_lane.at("fake:0") + by_lane.at("fake:1"), 20);
  EXPECT_EQ(gpus_[0]->recovery->stats().oom_events, 0u);
  EXPECT_GT(gpus_[1]->recovery->stats().oom_events, 0u);
  EXPECT_EQ(gpus_[1]->recovery->stats().failed_tasks, 0u);
  // Injected far below the budget: counted on the failing GPU's ladder, and no gate shrinks
  // (Note [Over-admission or a passing OOM]; tests/memory prove near-budget OOMs do shrink).
  EXPECT_GT(gpus_[1]->recovery->stats().below_budget_ooms, 0u);
  EXPECT_GT(gpus_[1]->recovery->stats().immediate_retries, 0u);
  EXPECT_EQ(gpus_[1]->gate->stats().shrinks_total, 0u);
  EXPECT_EQ(gpus_[0]->gate->stats().oom_signals_total, 0u) << "the healthy GPU's gate is untouched";
}

TEST_F(MultiLaneEngineTest, ExhaustedRetriesOnAnyGpuEndOnTheSharedCpuLane) {
  build(/*tasks_per_gpu=*/4, /*max_concurrent=*/2, /*with_cpu_lane=*/true);
  for (auto& gpu : gpus_) gpu->device->fail_always(true);
  const auto by_lane = run_tasks(6);
  EXPECT_EQ(by_lane.at("cpu"), 6);
  EXPECT_GT(gpus_[0]->recovery->stats().cpu_fallbacks + gpus_[1]->recovery->stats().cpu_fallbacks,
            0u);
}

}  // namespace
}  // namespace segmentor
