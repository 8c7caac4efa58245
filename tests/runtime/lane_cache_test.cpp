// A lane's calibration cache entry is keyed by what changes the stored verdicts (Note [Calibration
// on disk]): the same settings find it again, a changed slot count or batch cap does not.
#include "runtime/lane_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace segmentor {
namespace {

namespace fs = std::filesystem;

class LaneCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lane-cache-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  Config config(int max_concurrent, int max_model_batch = 8) const {
    Config c;
    c.calibration_cache = dir_.string();
    c.max_concurrent_images = max_concurrent;
    c.max_model_batch = max_model_batch;
    return c;
  }
  static std::vector<fs::path> models() {
    return {fs::path(SEGMENTOR_TEST_MODELS_DIR) / "test-bright.pt"};
  }
  static CachedMeasurements measured() {
    CachedMeasurements m;
    m.calibration.add_measurement("task", 1280, 720, 100'000'000);
    m.calibration.set_own_thread("selfie");
    return m;
  }
  fs::path dir_;
};

TEST_F(LaneCacheTest, TheSameSettingsFindTheEntryAndAnotherSlotCountDoesNot) {
  LaneCache::open(config(4), "cuda:0", models()).store(measured());
  const LaneCache again = LaneCache::open(config(4), "cuda:0", models());
  ASSERT_NE(again.calibration(), nullptr);
  EXPECT_EQ(again.calibration()->own_thread(), measured().calibration.own_thread());

  // Note [Dear first calls on a new thread]: whether one thread keeps up depends on the slots,
  // even where the batch cap is the same (2 at 4 slots and at 16 with MAX_MODEL_BATCH=2).
  LaneCache::open(config(4, 2), "cuda:0", models()).store(measured());
  EXPECT_NE(LaneCache::open(config(4, 2), "cuda:0", models()).calibration(), nullptr);
  EXPECT_EQ(LaneCache::open(config(16, 2), "cuda:0", models()).calibration(), nullptr);
  // The batch cap calibration measured up to (half the slots, at most MAX_MODEL_BATCH).
  EXPECT_EQ(LaneCache::open(config(4, 1), "cuda:0", models()).calibration(), nullptr);
  EXPECT_EQ(LaneCache::open(config(4), "cuda:1", models()).calibration(), nullptr);
}

}  // namespace
}  // namespace segmentor
