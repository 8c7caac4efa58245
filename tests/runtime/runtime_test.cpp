// build_runtime's model lifecycle: MODEL_IDLE_UNLOAD_SECONDS on the CPU (models stay) and, where
// LibTorch has a GPU, on CUDA (unloaded when idle, memory returned, reloaded on demand).
#include "runtime/runtime.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "models/model_loader.h"
#include "pipeline/segmenter.h"
#include "support/temp_dir.h"

namespace segmentor {
namespace {

Config test_config(const std::string& device) {
  Config config;
  config.device = device;
  config.foreground_model = std::string(SEGMENTOR_TEST_MODELS_DIR) + "/test-bright.pt";
  config.people_model = std::string(SEGMENTOR_TEST_MODELS_DIR) + "/test-yolo.pt";
  config.cpu_threads = 2;
  config.model_idle_unload_seconds = 1;
  config.calibration_cache = "none";  // a test that wants it gives its own folder
  return config;
}

RgbImage grey(int width, int height) {
  return {width, height,
          std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3, 90)};
}

// Note [Freezing pays only for many images on the CPU]: `run` over a few images skips it.
TEST(RuntimeTest, CpuModelsAreFrozenUnlessTheCallerSaysItDoesNotPay) {
  RuntimeOptions options;
  options.cpu_fallback = false;
  auto frozen = build_runtime(test_config("cpu"), options);
  ASSERT_TRUE(frozen.ok()) << frozen.status().to_string();
  EXPECT_TRUE((*frozen)->first().lane->foreground->info().checks.frozen);
  EXPECT_TRUE((*frozen)->first().lane->foreground->info().checks_run);
  options.freeze_cpu_models = false;
  auto plain = build_runtime(test_config("cpu"), options);
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  EXPECT_FALSE((*plain)->first().lane->foreground->info().checks.frozen);
  EXPECT_FALSE((*plain)->first().lane->people->info().checks.frozen);
  // No probe pass ran, and the start-up line says so rather than "checked now".
  EXPECT_FALSE((*plain)->first().lane->foreground->info().checks_run);
  EXPECT_FALSE((*plain)->first().lane->foreground->info().checks_known);
}

// Note [Load checks on disk]: a restart with the same model files does what the first start's
// checks found, without their probe passes, and follows the stored verdicts exactly.
TEST(RuntimeTest, ARestartFollowsTheLoadChecksTheFirstStartStored) {
  fixtures::TempDir cache;
  Config config = test_config("cpu");
  config.calibration_cache = cache.path().string();
  // A YOLO-seg people model finds people itself: the detector is neither loaded nor looked for.
  config.people_detector_model = "no-such-detector";
  RuntimeOptions options;
  options.cpu_fallback = false;
  auto first = build_runtime(config, options);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  const ModelInfo first_info = (*first)->first().lane->foreground->info();
  EXPECT_FALSE(first_info.checks_known);
  EXPECT_TRUE(first_info.checks.frozen);
  first->reset();

  std::vector<std::filesystem::path> entries;
  for (const auto& entry : std::filesystem::directory_iterator(cache.path())) {
    entries.push_back(entry.path());
  }
  ASSERT_EQ(entries.size(), 1u);

  auto second = build_runtime(config, options);
  ASSERT_TRUE(second.ok()) << second.status().to_string();
  const ModelInfo& second_info = (*second)->first().lane->foreground->info();
  EXPECT_TRUE(second_info.checks_known);
  EXPECT_FALSE(second_info.checks_run);
  EXPECT_EQ(second_info.checks, first_info.checks);
  EXPECT_TRUE(second_info.checks.frozen);
  second->reset();

  // The stored verdict decides: one saying freezing changed the output leaves the model plain.
  std::ifstream in(entries.front());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  const std::string frozen = "\"frozen\": true";
  const auto at = text.find(frozen, text.find("\"load_checks\""));
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, frozen.size(), "\"frozen\": false");
  std::ofstream(entries.front()) << text;
  auto third = build_runtime(config, options);
  ASSERT_TRUE(third.ok()) << third.status().to_string();
  int plain = 0;
  for (const MaskModel* model : (*third)->first().lane->models()) {
    EXPECT_TRUE(model->info().checks_known) << model->info().name;
    if (!model->info().checks.frozen) ++plain;
  }
  EXPECT_EQ(plain, 1) << "exactly the model whose stored verdict was changed";
}

TEST(RuntimeTest, IdleUnloadLeavesCpuModelsLoaded) {
  RuntimeOptions options;
  options.cpu_fallback = false;
  auto runtime = build_runtime(test_config("cpu"), options);
  ASSERT_TRUE(runtime.ok()) << runtime.status().to_string();
  EXPECT_TRUE((*runtime)->reloadable_models().empty());
  EXPECT_EQ((*runtime)->model_reaper, nullptr);
}

TEST(RuntimeTest, DeviceNamesWhichLanesAreBuilt) {
  auto cpu = resolve_lane_devices("cpu");
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(*cpu, std::vector<std::string>{"cpu"});
  auto automatic = resolve_lane_devices("auto");
  ASSERT_TRUE(automatic.ok());
  ASSERT_FALSE(automatic->empty());
  if (!resolve_device("cuda").ok()) {
    EXPECT_EQ(*automatic, std::vector<std::string>{"cpu"});
    EXPECT_EQ(resolve_lane_devices("cuda").status().code(), ErrorCode::kInvalidArgument);
  } else {
    EXPECT_EQ(automatic->front(), "cuda:0");
    EXPECT_EQ(*resolve_lane_devices("cuda"), *automatic);
    EXPECT_EQ(*resolve_lane_devices("cuda:0"), std::vector<std::string>{"cuda:0"});
  }
  EXPECT_FALSE(resolve_lane_devices("tpu").ok());
}

TEST(RuntimeTest, OnTheCpuThereIsOneLaneWithAHostMemoryGate) {
  RuntimeOptions options;
  options.cpu_fallback = false;
  auto runtime = build_runtime(test_config("cpu"), options);
  ASSERT_TRUE(runtime.ok()) << runtime.status().to_string();
  ASSERT_EQ((*runtime)->lanes.size(), 1u);
  EXPECT_EQ((*runtime)->first().name(), "cpu");
  EXPECT_TRUE((*runtime)->first().lane->serialize);
  EXPECT_EQ((*runtime)->lane_views().size(), 1u);
  EXPECT_EQ((*runtime)->describe().rfind("cpu", 0), 0u) << (*runtime)->describe();
}

// Needs two GPUs (scripts/gpu-check.sh on a two-GPU machine runs it).
TEST(RuntimeTest, EveryVisibleGpuGetsALaneWithItsOwnGateAndCalibration) {
  auto devices = resolve_lane_devices("auto");
  if (!devices.ok() || devices->size() < 2) GTEST_SKIP() << "needs two CUDA devices";
  RuntimeOptions options;
  options.cpu_fallback = false;
  Config config = test_config("auto");
  config.model_idle_unload_seconds = 0;
  auto built = build_runtime(config, options);
  ASSERT_TRUE(built.ok()) << built.status().to_string();
  Runtime& rt = **built;
  ASSERT_EQ(rt.lanes.size(), devices->size());
  for (std::size_t i = 0; i < rt.lanes.size(); ++i) {
    EXPECT_EQ(rt.lanes[i]->name(), (*devices)[i]);
    EXPECT_FALSE(rt.lanes[i]->calibration.empty()) << rt.lanes[i]->name();
    EXPECT_GT(rt.lanes[i]->gate->stats().resident_bytes, 0) << rt.lanes[i]->name();
  }
  EXPECT_NE(rt.lanes[0]->gate.get(), rt.lanes[1]->gate.get());

  // Tasks submitted together spread over the cards, and every one makes its masks.
  const auto out = std::filesystem::temp_directory_path() / "runtime_test_lanes";
  fixtures::remove_tree(out);
  EngineOptions engine_options;
  engine_options.layout = MaskLayout{out};
  engine_options.max_concurrent = config.max_concurrent_images;
  std::mutex mutex;
  std::map<std::string, int> by_lane;
  int failed = 0;
  {
    Engine engine(engine_options, rt.lane_views(), nullptr);
    for (int i = 0; i < 64; ++i) {
      EngineTask task{
          AssetKind::kVideoFrame, "frame" + std::to_string(i), "frame.jpg", grey(640, 480), {}};
      engine.submit(std::move(task), [&](const EngineTask&, const TaskOutcome& outcome) {
        std::lock_guard lock(mutex);
        if (outcome.status.ok()) {
          ++by_lane[outcome.lane];
        } else {
          ++failed;
          ADD_FAILURE() << outcome.status.to_string();
        }
      });
    }
    engine.wait_idle();
  }
  fixtures::remove_tree(out);
  EXPECT_EQ(failed, 0);
  EXPECT_GT(by_lane["cuda:0"], 0);
  EXPECT_GT(by_lane["cuda:1"], 0);
}

TEST(RuntimeTest, IdleModelsAreUnloadedOnTheGpuAndReloadedOnDemand) {
  if (!resolve_device("cuda").ok()) GTEST_SKIP() << "no CUDA device";
  RuntimeOptions options;
  options.cpu_fallback = false;
  auto built = build_runtime(test_config("cuda:0"), options);
  ASSERT_TRUE(built.ok()) << built.status().to_string();
  Runtime& rt = **built;
  DeviceLane& lane = rt.first();
  ASSERT_EQ(lane.reloadable_models.size(), 2u);
  Segmenter segmenter(*lane.lane->foreground, lane.lane->people.get());
  ASSERT_TRUE(segmenter.segment(grey(64, 48)).ok());
  const std::int64_t resident_loaded = lane.gate->stats().resident_bytes;
  const std::int64_t allocated_loaded = lane.device->snapshot().allocated_bytes;

  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((lane.reloadable_models[0]->loaded() || lane.reloadable_models[1]->loaded()) &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(lane.reloadable_models[0]->loaded());
  EXPECT_FALSE(lane.reloadable_models[1]->loaded());
  EXPECT_LT(lane.gate->stats().resident_bytes, resident_loaded);
  EXPECT_LT(lane.device->snapshot().allocated_bytes, allocated_loaded);

  auto again = segmenter.segment(grey(64, 48));
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(lane.reloadable_models[0]->reloads(), 1u);
  EXPECT_EQ(lane.gate->stats().resident_bytes, resident_loaded);
}

}  // namespace
}  // namespace segmentor
