// Capacity planning: the arithmetic on a hand-made calibration, and `segmentor plan` on the CPU.
#include "bench/plan_capacity.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace segmentor {
namespace {

constexpr std::int64_t kMiB = 1024LL * 1024;
constexpr std::int64_t kGiB = 1024 * kMiB;

CalibrationTable table() {
  CalibrationTable t;
  t.set_resident_bytes("models", 1 * kGiB);
  t.add_measurement("task", 1280, 720, 512 * kMiB);
  t.add_measurement("task", 1920, 1080, 1 * kGiB);
  return t;
}

TEST(PlanCapacity, SafeConcurrencyAndMeasuredThroughputPerCard) {
  std::vector<std::pair<int, bool>> calls;
  ThroughputProbe probe = [&](int concurrency, bool fhd) -> Result<double> {
    calls.emplace_back(concurrency, fhd);
    return concurrency * 10.0 + (fhd ? 1.0 : 0.0);
  };
  PlanOptions options;
  options.threshold = 0.85;
  options.max_measured_concurrency = 8;
  auto plan = plan_capacity(table(), options, probe);
  ASSERT_TRUE(plan.ok()) << plan.status().to_string();
  ASSERT_EQ(plan->rows.size(), 4U);
  // 8 GiB × 0.85 = 6.8 GiB, minus 1 GiB of weights = 5.8 GiB: 11 HD tasks, 5 FHD tasks.
  EXPECT_EQ(plan->rows[0].card_gib, 8);
  EXPECT_EQ(plan->rows[0].safe_hd, 11);
  EXPECT_EQ(plan->rows[0].safe_fhd, 5);
  EXPECT_DOUBLE_EQ(*plan->rows[0].fps_hd, 80.0);  // measured at min(11, 8)
  EXPECT_DOUBLE_EQ(*plan->rows[0].fps_fhd, 51.0);
  // 32 GiB: 26.2 GiB of room -> 52 HD, 26 FHD; both measured at 8.
  EXPECT_EQ(plan->rows[3].safe_hd, 52);
  EXPECT_EQ(plan->rows[3].safe_fhd, 26);
  EXPECT_DOUBLE_EQ(*plan->rows[3].fps_fhd, 81.0);
  EXPECT_EQ(*plan->task_fhd_bytes, 1 * kGiB);
  // Each (concurrency, size) measured once: HD at 8; FHD at 5, 8.
  EXPECT_EQ(calls.size(), 3U);
  EXPECT_NE(plan_to_markdown(*plan).find("| 8 GiB | 11 | 5 | 80.0 | 51.0 |"), std::string::npos);
}

TEST(PlanCapacity, WithoutCalibrationConcurrencyIsUnknown) {
  auto plan = plan_capacity(CalibrationTable{}, PlanOptions{}, ThroughputProbe{});
  ASSERT_TRUE(plan.ok());
  EXPECT_FALSE(plan->calibrated);
  for (const PlanRow& row : plan->rows) {
    EXPECT_FALSE(row.safe_hd.has_value());
    EXPECT_FALSE(row.fps_hd.has_value());
  }
  const auto json = nlohmann::json::parse(plan_to_json(*plan));
  EXPECT_TRUE(json["cards"][0]["safe_concurrency_hd"].is_null());
}

TEST(PlanCapacity, ATinyCardFitsNothing) {
  PlanOptions options;
  options.cards_gib = {1};
  auto plan = plan_capacity(table(), options, [](int, bool) -> Result<double> { return 99.0; });
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->rows[0].safe_hd, 0);  // 0.85 GiB < 1 GiB of weights
  EXPECT_DOUBLE_EQ(*plan->rows[0].fps_hd, 0.0);
}

TEST(PlanCommand, PrintsJsonForEveryCardOnTheCpu) {
  const std::string models = SEGMENTOR_TEST_MODELS_DIR;
  const std::string command = std::string("DEVICE=cpu CPU_THREADS=2 ") + SEGMENTOR_BINARY +
                              " --env-file /nonexistent plan --json --frames-per-point 2"
                              " --foreground-model " +
                              models + "/test-bright.pt --people-model " + models +
                              "/test-yolo.pt 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buffer[4096];
  while (std::fgets(buffer, sizeof(buffer), pipe) != nullptr) out += buffer;
  ASSERT_EQ(pclose(pipe), 0) << out;
  const auto json = nlohmann::json::parse(out);
  EXPECT_EQ(json["device"], "cpu");
  EXPECT_FALSE(json["calibrated"].get<bool>());  // calibration runs on GPUs only
  ASSERT_EQ(json["cards"].size(), 4U);
  EXPECT_EQ(json["cards"][3]["card_gib"], 32);
  // Measured at concurrency 1 on the CPU: a real, positive number.
  EXPECT_GT(json["cards"][0]["expected_hd_fps"].get<double>(), 0.0);
}

}  // namespace
}  // namespace segmentor
