#include "pipeline/reloadable_model.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "fake_mask_model.h"
#include "memory/admission_gate.h"
#include "memory/fake_device.h"

namespace segmentor {
namespace {

using std::chrono::seconds;
using testing::FakeMaskModel;
using testing::gray_image;
using testing::rect_mask;

// A manual clock for idleness.
struct ManualClock {
  std::chrono::steady_clock::time_point t{};
  ReloadableModel::NowFn fn() {
    return [this] { return t; };
  }
};

std::unique_ptr<MaskModel> fake_model(int* constructed) {
  ++*constructed;
  return std::make_unique<FakeMaskModel>(rect_mask(4, 4, 0, 0, 2, 2), "fg");
}

// A model that records whether it was told to run its passes on a thread of its own.
class OwnThreadModel : public FakeMaskModel {
 public:
  OwnThreadModel() : FakeMaskModel(rect_mask(4, 4, 0, 0, 2, 2), "people") {}
  void run_passes_on_own_thread() override { own_thread = true; }
  bool passes_on_own_thread() const override { return own_thread; }
  void pad_batches() override { padded = true; }
  bool pads_batches() const override { return padded; }
  bool own_thread = false;
  bool padded = false;
};

TEST(ReloadableModelTest, UnloadsWhenIdleAndReloadsOnTheNextCall) {
  ManualClock clock;
  int loads = 0;
  int unload_hooks = 0;
  int load_hooks = 0;
  ReloadableModel model(
      fake_model(&loads),
      [&]() -> Result<std::unique_ptr<MaskModel>> { return fake_model(&loads); },
      ReloadHooks{[&] { ++unload_hooks; }, [&] { ++load_hooks; }}, clock.fn());
  EXPECT_EQ(model.info().name, "fg");
  ASSERT_TRUE(model.segment(gray_image(4, 4)).ok());

  clock.t += seconds(59);
  EXPECT_FALSE(model.unload_if_idle(seconds(60)));  // not idle long enough
  clock.t += seconds(1);
  EXPECT_TRUE(model.unload_if_idle(seconds(60)));
  EXPECT_FALSE(model.loaded());
  EXPECT_EQ(unload_hooks, 1);
  EXPECT_FALSE(model.unload_if_idle(seconds(60)));  // already unloaded: once
  EXPECT_EQ(model.info().name, "fg");               // still known while unloaded

  auto mask = model.segment(gray_image(4, 4));
  ASSERT_TRUE(mask.ok());
  EXPECT_EQ(mask->values, rect_mask(4, 4, 0, 0, 2, 2).values);
  EXPECT_TRUE(model.loaded());
  EXPECT_EQ(loads, 2);
  EXPECT_EQ(load_hooks, 1);  // the first load was the caller's, not a reload
  EXPECT_EQ(model.unloads(), 1u);
  EXPECT_EQ(model.reloads(), 1u);
}

TEST(ReloadableModelTest, AReloadedModelKeepsTheCalibratedBatchLimit) {
  ManualClock clock;
  auto batching = []() -> std::unique_ptr<MaskModel> {
    auto model = std::make_unique<FakeMaskModel>(rect_mask(4, 4, 0, 0, 2, 2), "fg");
    model->set_max_batch(8);  // what a fresh load allows
    return model;
  };
  ReloadableModel model(
      batching(), [&]() -> Result<std::unique_ptr<MaskModel>> { return batching(); }, {},
      clock.fn());
  EXPECT_EQ(model.max_batch(), 8);
  model.limit_batch(3);  // calibration's memory check
  EXPECT_EQ(model.max_batch(), 3);
  clock.t += seconds(60);
  ASSERT_TRUE(model.unload_if_idle(seconds(60)));
  EXPECT_EQ(model.max_batch(), 3);  // as last seen, while unloaded
  EXPECT_FALSE(model.probe_batch(2).ok());
  ASSERT_TRUE(model.segment(gray_image(4, 4)).ok());  // reloads: 8, limited again to 3
  EXPECT_EQ(model.reloads(), 1u);
  EXPECT_EQ(model.max_batch(), 3);
}

// Note [Dear first calls on a new thread], Note [Flat batches run padded]: a model calibration
// put on a thread of its own, or padded, is so again when it is reloaded.
TEST(ReloadableModelTest, AReloadedModelKeepsItsOwnThreadAndPadding) {
  ManualClock clock;
  std::vector<OwnThreadModel*> loaded;
  auto load = [&]() -> std::unique_ptr<MaskModel> {
    auto model = std::make_unique<OwnThreadModel>();
    loaded.push_back(model.get());
    return model;
  };
  ReloadableModel model(
      load(), [&]() -> Result<std::unique_ptr<MaskModel>> { return load(); }, {}, clock.fn());
  EXPECT_FALSE(model.passes_on_own_thread());
  model.run_passes_on_own_thread();
  model.pad_batches();
  EXPECT_TRUE(loaded.back()->own_thread);
  EXPECT_TRUE(loaded.back()->padded);
  EXPECT_TRUE(model.passes_on_own_thread());
  clock.t += seconds(60);
  ASSERT_TRUE(model.unload_if_idle(seconds(60)));
  EXPECT_TRUE(model.passes_on_own_thread());  // as last seen, while unloaded
  ASSERT_TRUE(model.segment(gray_image(4, 4)).ok());
  ASSERT_EQ(loaded.size(), 2u);
  EXPECT_TRUE(loaded.back()->own_thread);  // the new load, told again
  EXPECT_TRUE(loaded.back()->padded);
  EXPECT_TRUE(model.passes_on_own_thread());
  EXPECT_TRUE(model.pads_batches());
}

TEST(ReloadableModelTest, NeverUnloadsUnderARunningCall) {
  ManualClock clock;
  int loads = 0;
  std::atomic<bool> inside{false};
  std::atomic<bool> release{false};
  // A model whose segment() blocks until told, to hold a call open.
  class Blocking : public FakeMaskModel {
   public:
    Blocking(std::atomic<bool>& inside, std::atomic<bool>& release)
        : FakeMaskModel(Mask::zeros(2, 2)), inside_(inside), release_(release) {}
    Result<Mask> segment(const RgbImage& image) override {
      inside_ = true;
      while (!release_) std::this_thread::yield();
      return FakeMaskModel::segment(image);
    }

   private:
    std::atomic<bool>& inside_;
    std::atomic<bool>& release_;
  };
  ++loads;
  ReloadableModel model(
      std::make_unique<Blocking>(inside, release),
      [&]() -> Result<std::unique_ptr<MaskModel>> { return fake_model(&loads); }, {}, clock.fn());
  std::jthread call([&] { ASSERT_TRUE(model.segment(gray_image(2, 2)).ok()); });
  while (!inside) std::this_thread::yield();
  clock.t += seconds(3600);
  EXPECT_FALSE(model.unload_if_idle(seconds(1)));  // a call is running
  release = true;
  call.join();
  EXPECT_FALSE(model.unload_if_idle(seconds(1)));  // it just ended: idle from now
  clock.t += seconds(1);
  EXPECT_TRUE(model.unload_if_idle(seconds(1)));
  EXPECT_EQ(loads, 1);
}

TEST(ReloadableModelTest, AFailedReloadIsReportedAndTriedAgainNextTime) {
  ManualClock clock;
  int loads = 0;
  bool fail = true;
  ReloadableModel model(
      fake_model(&loads),
      [&]() -> Result<std::unique_ptr<MaskModel>> {
        if (fail) return Status(ErrorCode::kOutOfMemory, "CUDA out of memory loading weights");
        return fake_model(&loads);
      },
      {}, clock.fn());
  ASSERT_TRUE(model.unload_if_idle(seconds(0)));
  auto first = model.segment(gray_image(4, 4));
  EXPECT_EQ(first.status().code(), ErrorCode::kOutOfMemory);  // the ladder's to handle
  EXPECT_NE(first.status().message().find("reloading fg"), std::string::npos)
      << first.status().message();
  EXPECT_FALSE(model.loaded());
  fail = false;
  EXPECT_TRUE(model.segment(gray_image(4, 4)).ok());
  EXPECT_TRUE(model.loaded());
}

TEST(ReloadableModelTest, HooksKeepTheGatesResidentBytesTrue) {
  FakeDevice device(1000);
  AdmissionGateOptions options;
  options.memory_threshold = 1.0;
  auto gate = std::move(AdmissionGate::create(options, &device)).value();
  gate->register_resident("fg", 300);
  ManualClock clock;
  int loads = 0;
  ReloadableModel model(
      fake_model(&loads),
      [&]() -> Result<std::unique_ptr<MaskModel>> { return fake_model(&loads); },
      ReloadHooks{[&] { gate->unregister_resident("fg"); },
                  [&] { gate->register_resident("fg", 300); }},
      clock.fn());
  EXPECT_EQ(gate->stats().resident_bytes, 300);
  clock.t += seconds(10);
  ASSERT_TRUE(model.unload_if_idle(seconds(5)));
  EXPECT_EQ(gate->stats().resident_bytes, 0);  // the room is the tasks' now
  EXPECT_EQ(gate->stats().limit_bytes, 1000);
  ASSERT_TRUE(model.segment(gray_image(4, 4)).ok());
  EXPECT_EQ(gate->stats().resident_bytes, 300);
}

}  // namespace
}  // namespace segmentor
