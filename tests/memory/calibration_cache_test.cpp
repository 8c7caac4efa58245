#include "memory/calibration_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>

namespace segmentor {
namespace {

namespace fs = std::filesystem;

class CalibrationCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("calibration_cache_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static CalibrationKey key() {
    CalibrationKey k;
    k.card = "NVIDIA H200";
    k.driver = "580.159.04";
    k.libtorch = "2.11.0";
    k.device = "cuda:0";
    k.models = {{"isnet-medium", "fnv1a64:0123456789abcdef:88117496"}};
    k.settings = {{"fp16", "true"}, {"cuda_streams", "worker"}};
    return k;
  }
  static CachedMeasurements table() {
    CachedMeasurements m;
    m.calibration.set_resident_bytes("models", 91'000'000);
    m.calibration.add_measurement("task", 400, 400, 207'000'000);
    m.calibration.add_measurement("task", 1920, 1080, 208'000'000);
    return m;
  }
  fs::path dir_;
};

TEST_F(CalibrationCacheTest, ARestartWithTheSameKeyGetsTheSameMeasurements) {
  const CalibrationCache cache(dir_ / "nested");  // created on store
  EXPECT_FALSE(cache.load(key()).has_value());
  ASSERT_TRUE(cache.store(key(), table()).ok());
  EXPECT_TRUE(fs::exists(cache.path_for(key())));
  auto loaded = cache.load(key());
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->calibration.rows().size(), 2u);
  EXPECT_EQ(*loaded->calibration.predict_task_bytes(1920, 1080), 208'000'000);
  EXPECT_EQ(loaded->calibration.resident_bytes(), 0)
      << "weights are measured at every load, not cached";
  EXPECT_TRUE(loaded->load_checks.empty());
}

// Calibration lowers a model's batch cap where a batch would need more than the gate reserves;
// a restart that lost the limit would let that model batch beyond what memory was measured for.
TEST_F(CalibrationCacheTest, BatchLimitsSurviveARestart) {
  const CalibrationCache cache(dir_);
  CachedMeasurements measured = table();
  measured.calibration.set_batch_limit("isnet-medium", 8);
  measured.calibration.set_batch_limit("selfie", 1);
  ASSERT_TRUE(cache.store(key(), measured).ok());
  auto loaded = cache.load(key());
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->calibration.batch_limits(), measured.calibration.batch_limits());
}

// Note [Dear first calls on a new thread]: a restart that lost which models run on a thread of
// their own would warm them on every slot thread again (~1 s per slot with the selfie model).
TEST_F(CalibrationCacheTest, ModelsOnTheirOwnThreadAndPaddedSurviveARestart) {
  const CalibrationCache cache(dir_);
  CachedMeasurements measured = table();
  measured.calibration.set_batch_limit("selfie", 1);
  measured.calibration.set_own_thread("selfie");
  measured.calibration.set_padded("nanodet");
  ASSERT_TRUE(cache.store(key(), measured).ok());
  auto loaded = cache.load(key());
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->calibration.own_thread(), (std::set<std::string>{"selfie"}));
  EXPECT_EQ(loaded->calibration.padded(), (std::set<std::string>{"nanodet"}));
}

// Note [Load checks on disk]: every verdict, including "batching not checked", comes back as it
// was found, and a lane without calibration (the CPU) can keep its checks alone.
TEST_F(CalibrationCacheTest, LoadChecksSurviveARestartWithOrWithoutCalibration) {
  const CalibrationCache cache(dir_);
  CachedMeasurements measured;
  measured.load_checks["isnet-medium"] = {.frozen = true, .optimized = true, .batches = true};
  measured.load_checks["nanodet-g"] = {.frozen = true, .optimized = false, .batches = false};
  measured.load_checks["selfie"] = {.frozen = false, .optimized = false, .batches = std::nullopt};
  ASSERT_TRUE(cache.store(key(), measured).ok());
  auto loaded = cache.load(key());
  ASSERT_TRUE(loaded.has_value());
  EXPECT_TRUE(loaded->calibration.empty());
  EXPECT_EQ(loaded->load_checks, measured.load_checks);

  measured.calibration = table().calibration;
  ASSERT_TRUE(cache.store(key(), measured).ok());
  loaded = cache.load(key());
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->calibration.rows().size(), 2u);
  EXPECT_EQ(loaded->load_checks, measured.load_checks);
}

TEST_F(CalibrationCacheTest, ALoadCheckWithAMissingVerdictIsAMiss) {
  const CalibrationCache cache(dir_);
  ASSERT_TRUE(cache.store(key(), table()).ok());
  std::ifstream in(cache.path_for(key()));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto at = text.find("\"load_checks\": {}");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 17, "\"load_checks\": {\"m\": {\"frozen\": true}}");
  std::ofstream(cache.path_for(key())) << text;
  std::string why;
  EXPECT_FALSE(cache.load(key(), &why).has_value());
  EXPECT_NE(why.find("optimized"), std::string::npos) << why;
}

TEST_F(CalibrationCacheTest, AnyChangeToTheKeyMissesAndReMeasures) {
  const CalibrationCache cache(dir_);
  ASSERT_TRUE(cache.store(key(), table()).ok());
  CalibrationKey driver = key();
  driver.driver = "590.10";
  CalibrationKey model = key();
  model.models["isnet-medium"] = "fnv1a64:fedcba9876543210:88117496";
  CalibrationKey fp32 = key();
  fp32.settings["fp16"] = "false";
  CalibrationKey card = key();
  card.card = "NVIDIA H100 80GB HBM3";
  for (const CalibrationKey& changed : {driver, model, fp32, card}) {
    EXPECT_NE(cache.path_for(changed), cache.path_for(key()));
    EXPECT_FALSE(cache.load(changed).has_value()) << changed.canonical();
  }
}

TEST_F(CalibrationCacheTest, AFileForAnotherKeyOrBrokenIsAMissThatSaysWhy) {
  const CalibrationCache cache(dir_);
  ASSERT_TRUE(cache.store(key(), table()).ok());
  // Another key's table copied under this key's name (a hash collision, or a hand edit).
  CalibrationKey other = key();
  other.libtorch = "2.12.0";
  ASSERT_TRUE(cache.store(other, table()).ok());
  fs::copy_file(cache.path_for(other), cache.path_for(key()), fs::copy_options::overwrite_existing);
  std::string why;
  EXPECT_FALSE(cache.load(key(), &why).has_value());
  EXPECT_NE(why.find("another card"), std::string::npos) << why;

  std::ofstream(cache.path_for(key())) << "{ not json";
  why.clear();
  EXPECT_FALSE(cache.load(key(), &why).has_value());
  EXPECT_FALSE(why.empty());
}

TEST_F(CalibrationCacheTest, AnUnwritableFolderIsAnErrorTheCallerMayIgnore) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "file") << "x";
  const CalibrationCache cache(dir_ / "file" / "below");  // a file where a folder should be
  EXPECT_FALSE(cache.store(key(), table()).ok());
}

TEST(FileFingerprintTest, FollowsTheBytes) {
  const fs::path path = fs::temp_directory_path() / ("fingerprint_" + std::to_string(::getpid()));
  std::ofstream(path) << "weights v1";
  auto first = file_fingerprint(path);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->rfind("fnv1a64:", 0), 0u);
  EXPECT_NE(first->find(":10"), std::string::npos) << *first;  // the size
  EXPECT_EQ(*file_fingerprint(path), *first);
  std::ofstream(path) << "weights v2";
  EXPECT_NE(*file_fingerprint(path), *first);
  fs::remove(path);
  EXPECT_FALSE(file_fingerprint(path).ok());
}

}  // namespace
}  // namespace segmentor
