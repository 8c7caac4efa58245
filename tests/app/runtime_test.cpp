// build_runtime's model lifecycle: MODEL_IDLE_UNLOAD_SECONDS on the CPU (models stay) and, where
// LibTorch has a GPU, on CUDA (unloaded when idle, memory returned, reloaded on demand).
#include "app/runtime.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "models/model_loader.h"
#include "pipeline/segmenter.h"

namespace segmentor {
namespace {

Config test_config(const std::string& device) {
  Config config;
  config.device = device;
  config.foreground_model = std::string(SEGMENTOR_TEST_MODELS_DIR) + "/test-bright.pt";
  config.people_model = std::string(SEGMENTOR_TEST_MODELS_DIR) + "/test-yolo.pt";
  config.cpu_threads = 2;
  config.model_idle_unload_seconds = 1;
  return config;
}

RgbImage grey(int width, int height) {
  return {width, height, std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3, 90)};
}

TEST(RuntimeTest, IdleUnloadLeavesCpuModelsLoaded) {
  RuntimeOptions options;
  options.cpu_fallback = false;
  auto runtime = build_runtime(test_config("cpu"), options);
  ASSERT_TRUE(runtime.ok()) << runtime.status().to_string();
  EXPECT_TRUE((*runtime)->reloadable_models.empty());
  EXPECT_EQ((*runtime)->model_reaper, nullptr);
}

TEST(RuntimeTest, IdleModelsAreUnloadedOnTheGpuAndReloadedOnDemand) {
  if (!resolve_device("cuda").ok()) GTEST_SKIP() << "no CUDA device";
  RuntimeOptions options;
  options.cpu_fallback = false;
  auto built = build_runtime(test_config("cuda"), options);
  ASSERT_TRUE(built.ok()) << built.status().to_string();
  Runtime& rt = **built;
  ASSERT_EQ(rt.reloadable_models.size(), 2u);
  Segmenter segmenter(*rt.primary->foreground, rt.primary->people.get());
  ASSERT_TRUE(segmenter.segment(grey(64, 48)).ok());
  const std::int64_t resident_loaded = rt.gate->stats().resident_bytes;
  const std::int64_t allocated_loaded = rt.device->snapshot().allocated_bytes;

  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((rt.reloadable_models[0]->loaded() || rt.reloadable_models[1]->loaded()) &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_FALSE(rt.reloadable_models[0]->loaded());
  EXPECT_FALSE(rt.reloadable_models[1]->loaded());
  EXPECT_LT(rt.gate->stats().resident_bytes, resident_loaded);
  EXPECT_LT(rt.device->snapshot().allocated_bytes, allocated_loaded);

  auto again = segmenter.segment(grey(64, 48));
  ASSERT_TRUE(again.ok()) << again.status().to_string();
  EXPECT_EQ(rt.reloadable_models[0]->reloads(), 1u);
  EXPECT_EQ(rt.gate->stats().resident_bytes, resident_loaded);
}

}  // namespace
}  // namespace segmentor
