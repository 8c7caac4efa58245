#include "memory/calibration.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

namespace segmentor {
namespace {

constexpr std::int64_t kMiB = 1024 * 1024;
constexpr std::int64_t kGiB = 1024 * kMiB;

CalibrationTable measured() {
  CalibrationTable t;
  t.set_resident_bytes("isnet", 170 * kMiB);
  t.set_resident_bytes("yolo", 100 * kMiB);
  t.add_measurement("isnet", 400, 400, 100 * kMiB);
  t.add_measurement("isnet", 1280, 720, 150 * kMiB);
  t.add_measurement("isnet", 1920, 1080, 200 * kMiB);
  t.add_measurement("yolo", 400, 400, 50 * kMiB);
  t.add_measurement("yolo", 1920, 1080, 80 * kMiB);
  return t;
}

TEST(CalibrationTest, SizeClasses) {
  EXPECT_EQ(size_class_of(400, 400), SizeClass::kProduct);
  EXPECT_EQ(size_class_of(401, 400), SizeClass::kHd);
  EXPECT_EQ(size_class_of(720, 1280), SizeClass::kHd);  // portrait HD
  EXPECT_EQ(size_class_of(1920, 1080), SizeClass::kFhd);
  EXPECT_EQ(size_class_of(1921, 1080), SizeClass::kLarger);
  EXPECT_EQ(reference_sizes().size(), 4u);
}

TEST(CalibrationTest, PicksTheSmallestMeasuredSizeThatCovers) {
  const CalibrationTable t = measured();
  EXPECT_EQ(*t.predict_model_bytes("isnet", 300, 300), 100 * kMiB);
  EXPECT_EQ(*t.predict_model_bytes("isnet", 400, 400), 100 * kMiB);
  EXPECT_EQ(*t.predict_model_bytes("isnet", 800, 600), 150 * kMiB);
  EXPECT_EQ(*t.predict_model_bytes("isnet", 1920, 1080), 200 * kMiB);
  EXPECT_EQ(*t.predict_model_bytes("yolo", 1280, 720), 80 * kMiB);  // no HD row: FHD covers it
}

TEST(CalibrationTest, BeyondTheLargestScalesByPixelsRoundingUp) {
  const CalibrationTable t = measured();
  const std::int64_t fhd = 1920 * 1080;
  const std::int64_t uhd = 3840 * 2160;  // 4 × FHD
  EXPECT_EQ(*t.predict_model_bytes("isnet", 3840, 2160), 200 * kMiB * uhd / fhd);
  const std::int64_t odd = *t.predict_model_bytes("isnet", 1921, 1080);
  EXPECT_GT(odd, 200 * kMiB);
  EXPECT_GE(static_cast<double>(odd), 200.0 * kMiB * (1921.0 * 1080.0) / fhd);
}

TEST(CalibrationTest, NeverPredictsLessForABiggerImage) {
  CalibrationTable t;
  t.add_measurement("m", 1280, 720, 300);
  t.add_measurement("m", 1920, 1080, 250);  // a noisy measurement
  EXPECT_EQ(*t.predict_model_bytes("m", 1920, 1080), 300);
  EXPECT_EQ(*t.predict_model_bytes("m", 100, 100), 300);
}

TEST(CalibrationTest, TaskCombinesModels) {
  const CalibrationTable t = measured();
  EXPECT_EQ(*t.predict_task_bytes(400, 400), 150 * kMiB);
  EXPECT_EQ(*t.predict_task_bytes(400, 400, TaskCombine::kMax), 100 * kMiB);
  EXPECT_EQ(t.resident_bytes(), 270 * kMiB);
  EXPECT_EQ(t.resident_bytes("yolo"), 100 * kMiB);
}

TEST(CalibrationTest, ErrorsAreTyped) {
  const CalibrationTable t = measured();
  EXPECT_EQ(t.predict_model_bytes("nope", 10, 10).status().code(), ErrorCode::kNotFound);
  EXPECT_EQ(t.predict_model_bytes("isnet", 0, 10).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CalibrationTable{}.predict_task_bytes(10, 10).status().code(), ErrorCode::kNotFound);
}

TEST(CalibrationTest, SafeConcurrencyForACard) {
  CalibrationTable t;
  t.set_resident_bytes("all", 3 * kGiB);
  t.add_measurement("all", 1920, 1080, 250 * kMiB);
  // 8 GiB × 0.85 = 6963.2 MiB; minus 3072 MiB of weights = 3891.2 MiB; / 250 MiB = 15.
  EXPECT_EQ(*t.safe_concurrency(8 * kGiB, 0.85, 1920, 1080), 15);
  EXPECT_EQ(*t.safe_concurrency(3 * kGiB, 0.85, 1920, 1080), 0);  // weights alone do not fit
  EXPECT_FALSE(t.safe_concurrency(8 * kGiB, 0.0, 1920, 1080).ok());
}

TEST(CalibrationTest, JsonRoundTrip) {
  const CalibrationTable t = measured();
  auto back = CalibrationTable::from_json(t.to_json());
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  ASSERT_EQ(back->rows().size(), t.rows().size());
  for (std::size_t i = 0; i < t.rows().size(); ++i) {
    EXPECT_EQ(back->rows()[i].model, t.rows()[i].model);
    EXPECT_EQ(back->rows()[i].size_class, t.rows()[i].size_class);
    EXPECT_EQ(back->rows()[i].peak_bytes, t.rows()[i].peak_bytes);
  }
  EXPECT_EQ(back->resident_bytes(), t.resident_bytes());
  EXPECT_EQ(*back->predict_task_bytes(3840, 2160), *t.predict_task_bytes(3840, 2160));
  EXPECT_NE(t.to_json().find("\"size_class\": \"fhd\""), std::string::npos);
}

TEST(CalibrationTest, BatchLimitsRoundTripAndNeverDropBelowOne) {
  CalibrationTable t = measured();
  t.set_batch_limit("isnet", 4);
  t.set_batch_limit("selfie", 0);  // clamped: a model always runs at least one input
  auto back = CalibrationTable::from_json(t.to_json());
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->batch_limits(), (std::map<std::string, int>{{"isnet", 4}, {"selfie", 1}}));
  EXPECT_NE(t.describe().find("batches of isnet: up to 4"), std::string::npos);
  // A table without limits (an older cache file) reads as none.
  auto plain = CalibrationTable::from_json(measured().to_json());
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->batch_limits().empty());
  EXPECT_EQ(CalibrationTable::from_json(R"({"batch_limits": {"m": 0}})").status().code(),
            ErrorCode::kCorruptData);
}

// Note [Dear first calls on a new thread]: which models run their passes on a thread of their own
// is kept with the calibration, and an older file without it reads as none.
TEST(CalibrationTest, ModelsOnTheirOwnThreadAndPaddedRoundTrip) {
  CalibrationTable t = measured();
  t.set_own_thread("selfie");
  t.set_padded("nanodet");
  auto back = CalibrationTable::from_json(t.to_json());
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->own_thread(), (std::set<std::string>{"selfie"}));
  EXPECT_EQ(back->padded(), (std::set<std::string>{"nanodet"}));
  EXPECT_NE(t.describe().find("batches of nanodet: padded to the limit"), std::string::npos);
  EXPECT_NE(t.describe().find("passes of selfie: on a thread of its own"), std::string::npos);
  auto plain = CalibrationTable::from_json(measured().to_json());
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(plain->own_thread().empty());
  EXPECT_TRUE(plain->padded().empty());
  EXPECT_EQ(CalibrationTable::from_json(R"({"own_thread": [3]})").status().code(),
            ErrorCode::kCorruptData);
}

// Note [Calibration on disk]: a restart takes every stored verdict and keeps the resident bytes
// its own load measured; what a cache stores is everything but those.
TEST(CalibrationTest, ARestartTakesAllButTheResidentBytes) {
  CalibrationTable stored = measured();
  stored.set_batch_limit("isnet", 4);
  stored.set_own_thread("selfie");
  stored.set_padded("nanodet");
  stored = stored.without_resident_bytes();
  EXPECT_EQ(stored.resident_bytes(), 0);
  CalibrationTable lane;
  lane.set_resident_bytes("models", 123);
  lane.take_all_but_resident_bytes(stored);
  EXPECT_EQ(lane.resident_bytes(), 123);
  EXPECT_EQ(lane.rows(), stored.rows());
  EXPECT_EQ(lane.batch_limits(), stored.batch_limits());
  EXPECT_EQ(lane.own_thread(), stored.own_thread());
  EXPECT_EQ(lane.padded(), stored.padded());
}

TEST(CalibrationTest, BadJsonIsCorruptData) {
  EXPECT_EQ(CalibrationTable::from_json("{not json").status().code(), ErrorCode::kCorruptData);
  EXPECT_EQ(CalibrationTable::from_json(R"({"rows": [{"model": "m"}]})").status().code(),
            ErrorCode::kCorruptData);
  EXPECT_FALSE(CalibrationTable::from_json(
                   R"({"rows": [{"model": "m", "width": 1, "height": 1, "peak_bytes": 1,
                                 "size_class": "huge"}]})")
                   .ok());
}

TEST(CalibrationTest, DescribeListsEveryRow) {
  const std::string text = measured().describe();
  EXPECT_NE(text.find("isnet"), std::string::npos);
  EXPECT_NE(text.find("1920x1080"), std::string::npos);
  EXPECT_NE(text.find("200.0 MiB"), std::string::npos);
  EXPECT_NE(text.find("resident total: 270.0 MiB"), std::string::npos);
}

}  // namespace
}  // namespace segmentor
