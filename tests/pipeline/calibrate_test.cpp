#include "pipeline/calibrate.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "fake_mask_model.h"
#include "memory/fake_device.h"

namespace segmentor {
namespace {

constexpr std::int64_t kMiB = 1024 * 1024;

// Allocates on a FakeDevice the way a model on a fresh CUDA stream does: `first` bytes, freed,
// then `second` bytes. With second > first the cached first block cannot serve the second
// request, so the task reserves first + second while never holding more than `second`.
class AllocatingModel : public MaskModel {
 public:
  AllocatingModel(FakeDevice& device, std::int64_t first, std::int64_t second)
      : device_(device), first_(first), second_(second) {
    info_.name = "allocating";
  }
  const ModelInfo& info() const override { return info_; }
  Result<Mask> segment(const RgbImage& image) override {
    SEGMENTOR_ASSIGN_OR_RETURN(auto a, device_.allocate(first_));
    device_.free(a);
    SEGMENTOR_ASSIGN_OR_RETURN(auto b, device_.allocate(second_));
    device_.free(b);
    return Mask::zeros(image.width, image.height);
  }

 private:
  FakeDevice& device_;
  std::int64_t first_;
  std::int64_t second_;
  ModelInfo info_;
};

TEST(CalibrateTest, TaskBytesAreTheLargerOfAllocatedAndReservedGrowth) {
  MemorySnapshot before;
  before.allocated_bytes = 100;
  before.reserved_bytes = 150;
  MemorySnapshot after;
  after.peak_allocated_bytes = 400;  // +300
  after.peak_reserved_bytes = 650;   // +500
  EXPECT_EQ(task_bytes(before, after), 500);
  after.peak_reserved_bytes = 200;  // +50: allocated growth wins
  EXPECT_EQ(task_bytes(before, after), 300);
  after.peak_allocated_bytes = 50;  // peaks below the start (cannot happen, but never negative)
  after.peak_reserved_bytes = 100;
  EXPECT_EQ(task_bytes(before, after), 0);
}

TEST(CalibrateTest, RecordsReservedGrowthFromAnEmptyCacheAtEveryReferenceSize) {
  FakeDevice device(64 * kMiB * 1024);
  AllocatingModel foreground(device, 100 * kMiB, 150 * kMiB);
  Segmenter segmenter(foreground, nullptr);
  CalibrationTable table;
  ASSERT_TRUE(calibrate_segmenter(segmenter, device, table).ok());

  const std::vector<CalibrationRow> rows = table.rows();
  ASSERT_EQ(rows.size(), reference_sizes().size());
  for (const CalibrationRow& row : rows) {
    // Allocated peak alone would say 150 MiB; the cache the task built holds 250 MiB.
    EXPECT_EQ(row.peak_bytes, 250 * kMiB) << row.width << "x" << row.height;
  }
  // The warm-up's cache was released before measuring, so it is not counted twice.
  EXPECT_GE(device.release_calls(), static_cast<int>(reference_sizes().size()));
}

// A person detector that finds nobody, at any image size.
class NobodyDetector : public MaskModel {
 public:
  NobodyDetector() { info_.kind = ModelKind::kPersonDetector; }
  const ModelInfo& info() const override { return info_; }
  Result<Mask> segment(const RgbImage& image) override {
    ++calls;
    return Mask::zeros(image.width, image.height);
  }
  int calls = 0;

 private:
  ModelInfo info_;
};

TEST(CalibrateTest, CountsThePeopleModelEvenThoughTheDetectorFindsNobody) {
  FakeDevice device(64 * kMiB * 1024);
  AllocatingModel foreground(device, 100 * kMiB, 150 * kMiB);
  AllocatingModel people(device, 400 * kMiB, 400 * kMiB);
  NobodyDetector detector;
  Segmenter segmenter(foreground, &people, &detector);
  CalibrationTable table;
  ASSERT_TRUE(calibrate_segmenter(segmenter, device, table).ok());
  for (const CalibrationRow& row : table.rows()) {
    // More than the foreground's 250 MiB alone: the people model ran and was measured.
    EXPECT_GE(row.peak_bytes, 400 * kMiB) << row.width << "x" << row.height;
  }
  EXPECT_GT(detector.calls, 0);
  // Afterwards the segmenter gates again: nobody found, the people model is skipped.
  device.reset_peak();
  auto masks = segmenter.segment(testing::gray_image(8, 8));
  ASSERT_TRUE(masks.ok());
  EXPECT_FALSE(masks->people_found);
  EXPECT_LT(device.snapshot().peak_allocated_bytes, 400 * kMiB);
}

TEST(CalibrateTest, OutOfMemoryDuringCalibrationNamesTheSize) {
  FakeDevice device(64 * kMiB * 1024);
  AllocatingModel foreground(device, kMiB, kMiB);
  Segmenter segmenter(foreground, nullptr);
  device.fail_always(true);
  CalibrationTable table;
  const Status status = calibrate_segmenter(segmenter, device, table);
  EXPECT_EQ(status.code(), ErrorCode::kOutOfMemory);
  EXPECT_NE(status.message().find("calibration warm-up at"), std::string::npos) << status.message();
}

// Note [Batch sizes within the reserved bytes]: a model whose forward pass of `batch` inputs
// allocates fixed + batch × per_input bytes, or fails when `fails_at` <= batch.
class BatchingModel : public MaskModel {
 public:
  BatchingModel(FakeDevice& device, int max_batch, std::int64_t fixed, std::int64_t per_input)
      : device_(device), max_batch_(max_batch), fixed_(fixed), per_input_(per_input) {
    info_.name = "batching";
  }
  const ModelInfo& info() const override { return info_; }
  Result<Mask> segment(const RgbImage& image) override {
    return Mask::zeros(image.width, image.height);
  }
  int max_batch() const override { return max_batch_; }
  void limit_batch(int max_batch) override { max_batch_ = std::min(max_batch_, max_batch); }
  void pad_batches() override { padded = true; }
  bool pads_batches() const override { return padded; }
  bool padded = false;
  Status probe_batch(int batch) override {
    probed.push_back(batch);
    std::this_thread::sleep_for(pass_ms * (time_per_input ? batch : 1) +
                                extra_input_ms * (batch - 1));
    if (batch >= fails_at) return out_of_memory("batch " + std::to_string(batch));
    std::int64_t bytes = fixed_ + batch * per_input_;
    if (batch >= grows_at) bytes *= 2;  // an algorithm with a bigger workspace, say
    SEGMENTOR_ASSIGN_OR_RETURN(auto id, device_.allocate(bytes));
    device_.free(id);
    return Status::Ok();
  }
  int fails_at = 1 << 20;
  int grows_at = 1 << 20;
  // A pass's time: pass_ms whatever the batch (a light model: the GPU was mostly idle), or
  // pass_ms per input (a heavy one: batch 1 already fills the GPU).
  std::chrono::milliseconds pass_ms{4};
  bool time_per_input = false;
  std::chrono::milliseconds extra_input_ms{0};  // added per input beyond the first
  std::vector<int> probed;

 private:
  FakeDevice& device_;
  int max_batch_;
  std::int64_t fixed_;
  std::int64_t per_input_;
  ModelInfo info_;
};

TEST(CalibrateBatchTest, KeepsTheWholeCapWhenPeaksGrowNoFasterThanTheBatch) {
  FakeDevice device(64 * kMiB * 1024);
  BatchingModel model(device, 8, 40 * kMiB, 100 * kMiB);
  auto calibrated = calibrate_batch_limit(model, device);
  ASSERT_TRUE(calibrated.ok()) << calibrated.status().to_string();
  EXPECT_EQ(calibrated->limit, 8);
  EXPECT_EQ(model.max_batch(), 8);
  ASSERT_EQ(calibrated->peaks.size(), 4u);  // 1, 2, 4, 8
  EXPECT_EQ(calibrated->peaks[0], (std::pair<int, std::int64_t>{1, 140 * kMiB}));
  EXPECT_EQ(calibrated->peaks[3], (std::pair<int, std::int64_t>{8, 840 * kMiB}));
}

TEST(CalibrateBatchTest, StopsWhereABatchNeedsMoreThanItsTasksReserved) {
  FakeDevice device(64 * kMiB * 1024);
  BatchingModel model(device, 8, 40 * kMiB, 100 * kMiB);
  model.grows_at = 4;  // 2 × 440 MiB > 4 × 140 MiB
  auto calibrated = calibrate_batch_limit(model, device);
  ASSERT_TRUE(calibrated.ok());
  EXPECT_EQ(calibrated->limit, 2);
  EXPECT_EQ(model.max_batch(), 2);               // the model's cap was lowered too
  EXPECT_EQ(calibrated->peaks.back().first, 4);  // measured, failed, not tried further
}

// A light model's batch runs within its tasks' tickets, each of which covers the task's largest
// model: the allocator's rounding (4 MiB at batch 1, 12 MiB at batch 2 here) must not stop it.
TEST(CalibrateBatchTest, ALightModelsBatchMayUseWhatItsTasksReserve) {
  FakeDevice device(64 * kMiB * 1024);
  BatchingModel light(device, 8, 2 * kMiB, 2 * kMiB);
  light.grows_at = 2;  // 12 MiB at batch 2 > 2 × 4 MiB
  auto alone = calibrate_batch_limit(light, device);
  ASSERT_TRUE(alone.ok());
  EXPECT_EQ(alone->limit, 1) << "bounded by its own batch-1 peak";

  BatchingModel beside(device, 8, 2 * kMiB, 2 * kMiB);
  beside.grows_at = 2;
  auto calibrated = calibrate_batch_limit(beside, device, 0, 400 * kMiB);
  ASSERT_TRUE(calibrated.ok());
  EXPECT_EQ(calibrated->limit, 8);  // 36 MiB at batch 8, within 8 × 400 MiB
  EXPECT_EQ(beside.max_batch(), 8);

  BatchingModel heavy(device, 8, 40 * kMiB, 100 * kMiB);
  heavy.grows_at = 4;  // 2 × 440 MiB > 4 × 140 MiB: beyond its tasks' 4 × 100 MiB too
  calibrated = calibrate_batch_limit(heavy, device, 0, 100 * kMiB);
  ASSERT_TRUE(calibrated.ok());
  EXPECT_EQ(calibrated->limit, 2);
}

// Note [Flat batches run padded]: a model whose full batch costs a lone task little of its GPU
// time runs its batches padded to the limit, where the padded batch fits what one task may use; a
// model whose pass grows with the batch, or whose full batch needs more than one task's bytes,
// does not.
TEST(CalibrateBatchTest, FlatBatchesWithinOneTasksBytesArePadded) {
  FakeDevice device(64 * kMiB * 1024);
  BatchingModel flat(device, 8, 2 * kMiB, 2 * kMiB);  // 18 MiB at batch 8
  auto calibrated = calibrate_batch_limit(flat, device, 0, 400 * kMiB);
  ASSERT_TRUE(calibrated.ok()) << calibrated.status().to_string();
  EXPECT_EQ(calibrated->limit, 8);
  EXPECT_TRUE(calibrated->padded);
  EXPECT_TRUE(flat.pads_batches());

  BatchingModel growing(device, 8, 2 * kMiB, 2 * kMiB);
  growing.extra_input_ms = std::chrono::milliseconds(2);  // 4 ms at 1, 18 ms at 8: pays, not flat
  calibrated = calibrate_batch_limit(growing, device, 0, 400 * kMiB);
  ASSERT_TRUE(calibrated.ok());
  EXPECT_EQ(calibrated->limit, 8);
  EXPECT_FALSE(calibrated->padded);
  EXPECT_FALSE(growing.pads_batches());

  // 8 ms at 1, 15 ms at 8: padding a lone task adds 7 ms, most of the model's own pass but a
  // small part of a 50 ms task (the selfie model beside IS-Net and the detector).
  // Alone (task time 0), its own 8 ms pass is the task's GPU time, and 7 ms more is too much.
  for (const auto& [task_seconds, padded] : {std::pair{0.050, true}, std::pair{0.0, false}}) {
    BatchingModel cheap(device, 8, 2 * kMiB, 2 * kMiB);
    cheap.pass_ms = std::chrono::milliseconds(8);
    cheap.extra_input_ms = std::chrono::milliseconds(1);
    calibrated = calibrate_batch_limit(cheap, device, task_seconds, 400 * kMiB);
    ASSERT_TRUE(calibrated.ok());
    EXPECT_EQ(calibrated->limit, 8);
    EXPECT_EQ(calibrated->padded, padded) << "a task of " << task_seconds << " s";
  }

  BatchingModel large(device, 8, 40 * kMiB, 100 * kMiB);  // 840 MiB at batch 8
  calibrated = calibrate_batch_limit(large, device, 0, 400 * kMiB);
  ASSERT_TRUE(calibrated.ok());
  EXPECT_EQ(calibrated->limit, 8);
  EXPECT_FALSE(calibrated->padded) << "a padded batch of one task would need two tasks' bytes";
}

TEST(CalibrateBatchTest, AnOutOfMemoryErrorStopsBelowThatBatch) {
  FakeDevice device(64 * kMiB * 1024);
  BatchingModel model(device, 6, 40 * kMiB, 100 * kMiB);
  model.fails_at = 6;
  auto calibrated = calibrate_batch_limit(model, device);
  ASSERT_TRUE(calibrated.ok());
  EXPECT_EQ(calibrated->limit, 4);  // 1, 2, 4 fit; 6 (the cap, not a power of two) did not
  // 6 was tried once, failed, and was neither measured again nor timed.
  EXPECT_EQ(std::count(model.probed.begin(), model.probed.end(), 6), 1);

  model.fails_at = 1;  // not even one input: calibration cannot go on
  EXPECT_EQ(calibrate_batch_limit(model, device).status().code(), ErrorCode::kOutOfMemory);
}

// Note [A batch must pay for itself]: batches that fit but do not raise frames per second would
// only serialise passes that run side by side unbatched.
TEST(CalibrateBatchTest, AModelWhoseBatchesDoNotPayStaysUnbatched) {
  FakeDevice device(64 * kMiB * 1024);
  BatchingModel model(device, 4, 40 * kMiB, 100 * kMiB);
  model.time_per_input = true;
  model.pass_ms = std::chrono::milliseconds(10);
  auto calibrated = calibrate_batch_limit(model, device);
  ASSERT_TRUE(calibrated.ok()) << calibrated.status().to_string();
  EXPECT_FALSE(calibrated->pays);
  EXPECT_LT(calibrated->speedup, kMinBatchSpeedup);
  EXPECT_EQ(calibrated->limit, 1);
  EXPECT_EQ(model.max_batch(), 1);
  ASSERT_EQ(calibrated->pass_seconds.size(), 3u);  // 1, 2 and 4 fit and were timed
  EXPECT_EQ(calibrated->pass_seconds.back().first, 4);
  EXPECT_GE(calibrated->pass_seconds.back().second, 0.040);
}

TEST(CalibrateBatchTest, AModelWhoseBatchesPayKeepsWhatFits) {
  FakeDevice device(64 * kMiB * 1024);
  BatchingModel model(device, 4, 40 * kMiB, 100 * kMiB);
  model.pass_ms = std::chrono::milliseconds(10);
  auto calibrated = calibrate_batch_limit(model, device);
  ASSERT_TRUE(calibrated.ok()) << calibrated.status().to_string();
  EXPECT_TRUE(calibrated->pays);
  EXPECT_GT(calibrated->speedup, 2.0);  // about 4: four inputs in one pass's time
  EXPECT_EQ(calibrated->limit, 4);
}

// A light model beside a heavy one: its batches run several times faster, but its passes are a
// small part of a task's GPU time, so batching them cannot give the lane much.
TEST(CalibrateBatchTest, AModelWithASmallShareOfATasksTimeStaysUnbatched) {
  FakeDevice device(64 * kMiB * 1024);
  BatchingModel light(device, 4, 40 * kMiB, 100 * kMiB);
  light.pass_ms = std::chrono::milliseconds(5);
  BatchingModel heavy(device, 1, 40 * kMiB, 100 * kMiB);
  heavy.pass_ms = std::chrono::milliseconds(95);
  auto light_seconds = time_single_pass(light);
  auto heavy_seconds = time_single_pass(heavy);
  ASSERT_TRUE(light_seconds.ok() && heavy_seconds.ok());
  EXPECT_GE(*heavy_seconds, 0.095);
  auto calibrated = calibrate_batch_limit(light, device, *light_seconds + *heavy_seconds);
  ASSERT_TRUE(calibrated.ok()) << calibrated.status().to_string();
  EXPECT_GT(calibrated->speedup, kMinBatchSpeedup);
  EXPECT_LT(calibrated->share, 0.10);  // 5 of 100 ms (more under a slow scheduler: still small)
  EXPECT_LT(calibrated->gain, kMinBatchGain);
  EXPECT_FALSE(calibrated->pays);
  EXPECT_EQ(light.max_batch(), 1);

  // The same model where it is most of a task's time batches.
  BatchingModel alone(device, 4, 40 * kMiB, 100 * kMiB);
  alone.pass_ms = std::chrono::milliseconds(5);
  auto alone_seconds = time_single_pass(alone);
  ASSERT_TRUE(alone_seconds.ok());
  calibrated = calibrate_batch_limit(alone, device, *alone_seconds * 1.25);
  ASSERT_TRUE(calibrated.ok());
  EXPECT_GT(calibrated->share, 0.5);
  EXPECT_TRUE(calibrated->pays);
  EXPECT_EQ(alone.max_batch(), 4);
}

TEST(CalibrateBatchTest, AnUnbatchedModelIsNotMeasured) {
  FakeDevice device(64 * kMiB * 1024);
  BatchingModel model(device, 1, 40 * kMiB, 100 * kMiB);
  auto calibrated = calibrate_batch_limit(model, device);
  ASSERT_TRUE(calibrated.ok());
  EXPECT_EQ(calibrated->limit, 1);
  EXPECT_TRUE(calibrated->peaks.empty());
  EXPECT_TRUE(model.probed.empty());
}

// Note [Dear first calls on a new thread]: a model whose first call on each thread is slow, as
// cuDNN's per-thread plans make the selfie model's.
class FirstCallModel : public MaskModel {
 public:
  FirstCallModel() { info_.name = "first-call"; }
  const ModelInfo& info() const override { return info_; }
  Result<Mask> segment(const RgbImage& image) override {
    return Mask::zeros(image.width, image.height);
  }
  Status probe_batch(int /*batch*/) override {
    thread_local bool warm = false;  // per thread, as LibTorch's per-thread state is
    const bool first = !warm;
    warm = true;
    if (first) ++first_calls_;
    std::this_thread::sleep_for(first ? std::chrono::milliseconds(60)
                                      : std::chrono::milliseconds(1));
    return Status::Ok();
  }
  int first_calls() const { return first_calls_.load(); }

 private:
  ModelInfo info_;
  std::atomic<int> first_calls_{0};
};

TEST(DearFirstCallTest, TimesOneCallOnAThreadThatNeverRanOne) {
  FirstCallModel model;
  ASSERT_TRUE(model.probe_batch(1).ok());  // this thread is warm now; the timed call is not here
  for (int i = 1; i <= 2; ++i) {
    auto seconds = time_first_call_on_new_thread(model);
    ASSERT_TRUE(seconds.ok()) << seconds.status().to_string();
    EXPECT_GE(*seconds, 0.06);
    EXPECT_EQ(model.first_calls(), 1 + i);
  }
  FakeDevice device(kMiB);
  BatchingModel failing(device, 1, 0, 0);
  failing.fails_at = 1;
  EXPECT_EQ(time_first_call_on_new_thread(failing).status().code(), ErrorCode::kOutOfMemory);
}

TEST(DearFirstCallTest, ADearModelGetsItsOwnThreadWhereOneThreadKeepsUpWithTheSlots) {
  EXPECT_TRUE(keeps_own_thread(1.0, 0.22, 4));    // the selfie model beside IS-Net, 4 slots
  EXPECT_FALSE(keeps_own_thread(1.0, 0.22, 16));  // 16 slots: 3.5 passes per task's time
  EXPECT_FALSE(keeps_own_thread(0.06, 0.22, 4));  // NanoDet: cheap on a new thread
  EXPECT_FALSE(keeps_own_thread(1.0, 0.9, 2));    // a heavy model keeps the slots' overlap
  EXPECT_FALSE(keeps_own_thread(kDearFirstCallSeconds, 0.1, 4));
  EXPECT_TRUE(keeps_own_thread(1.0, kMaxOwnThreadLoad / 4, 4));
  EXPECT_TRUE(keeps_own_thread(1.0, 1.0, 1));  // one slot: one thread either way
}

}  // namespace
}  // namespace segmentor
