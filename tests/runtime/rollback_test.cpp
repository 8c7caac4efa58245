// The rollback knobs of docs/rollout.md, from the environment variables an operator sets to the
// behaviour the runbook promises, through the runtime `serve` and `run` build (CPU, test models):
//   MAX_CONCURRENT_IMAGES=1    one task at a time
//   RETRY_ON_OOM=false         an out-of-memory task fails at once, no retries
//   GPU_MEMORY_THRESHOLD=1.0   the memory gate is off (admission by count), with a start-up warning
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <sstream>

#include "bench/bench_runner.h"
#include "config/config.h"
#include "pipeline/engine.h"
#include "runtime/runtime.h"

namespace segmentor {
namespace {

Config config_from(const Environment& extra) {
  Environment env = {
      {"DEVICE", "cpu"},
      {"FOREGROUND_SEG_MODEL_NAME", std::string(SEGMENTOR_TEST_MODELS_DIR) + "/test-bright.pt"},
      {"PEOPLE_SEG_MODEL_NAME", std::string(SEGMENTOR_TEST_MODELS_DIR) + "/test-yolo.pt"},
      {"CPU_THREADS", "2"},
  };
  for (const auto& [name, value] : extra) env[name] = value;
  auto config = parse_config(env);
  EXPECT_TRUE(config.ok()) << config.status().to_string();
  return config.ok() ? *config : Config{};
}

std::unique_ptr<Runtime> runtime_for(const Config& config) {
  auto runtime = build_runtime(config);
  EXPECT_TRUE(runtime.ok()) << runtime.status().to_string();
  return runtime.ok() ? std::move(*runtime) : nullptr;
}

// `count` generated HD frames through an Engine on the runtime's own lanes, gates and ladders
// (the assembly `serve` uses); returns how many succeeded.
int run_tasks(Runtime& runtime, int count) {
  EngineOptions options;
  options.layout = MaskLayout{std::filesystem::temp_directory_path() / "segmentor-rollback-test",
                              "masks_foreground", "masks_people", "masks_product"};
  options.write_masks = false;
  Engine engine(options, runtime.lane_views(), runtime.cpu_lane.get());
  const BenchFrames frames = generate_frames(1);
  std::mutex mutex;
  std::condition_variable all_done;
  int finished = 0, done = 0;
  for (int i = 0; i < count; ++i) {
    EngineTask task;
    task.kind = AssetKind::kVideoFrame;
    task.id = "frame" + std::to_string(i);
    task.source = "generated";
    task.image = frames.hd.front();
    engine.submit(std::move(task), [&](const EngineTask&, const TaskOutcome& outcome) {
      std::lock_guard lock(mutex);
      ++finished;
      if (outcome.status.ok()) ++done;
      all_done.notify_all();
    });
  }
  std::unique_lock lock(mutex);
  all_done.wait(lock, [&] { return finished == count; });
  return done;
}

TEST(RollbackTest, MaxConcurrentImagesOneRunsOneTaskAtATime) {
  const Config config = config_from({{"MAX_CONCURRENT_IMAGES", "1"}});
  auto runtime = runtime_for(config);
  ASSERT_NE(runtime, nullptr);
  EXPECT_EQ(runtime->first().gate->stats().concurrency_cap, 1);
  EXPECT_EQ(run_tasks(*runtime, 6), 6);
  EXPECT_EQ(runtime->first().gate->stats().peak_in_flight, 1);

  const Config normal = config_from({{"MAX_CONCURRENT_IMAGES", "4"}});
  auto wide = runtime_for(normal);
  ASSERT_NE(wide, nullptr);
  EXPECT_EQ(wide->first().gate->stats().concurrency_cap, 4);
}

TEST(RollbackTest, RetryOnOomFalseFailsAtOnceWithoutRetrying) {
  // Every model call on the lane fails with out-of-memory (the test-only injection knob).
  auto no_retry = runtime_for(config_from(
      {{"RETRY_ON_OOM", "false"}, {"MAX_OOM_RETRIES", "3"}, {"SEGMENTOR_INJECT_OOM_RATE", "1"}}));
  ASSERT_NE(no_retry, nullptr);
  EXPECT_EQ(run_tasks(*no_retry, 3), 0);
  const RecoveryStats off = no_retry->recovery_stats();
  EXPECT_EQ(off.oom_events, 3U);
  EXPECT_EQ(off.retries, 0U);
  EXPECT_EQ(off.failed_tasks, 3U);

  // The same with retries on: the ladder retries each task before giving up.
  auto retry = runtime_for(config_from(
      {{"RETRY_ON_OOM", "true"}, {"MAX_OOM_RETRIES", "1"}, {"SEGMENTOR_INJECT_OOM_RATE", "1"}}));
  ASSERT_NE(retry, nullptr);
  EXPECT_EQ(run_tasks(*retry, 2), 0);
  EXPECT_EQ(retry->recovery_stats().retries, 2U);
}

TEST(RollbackTest, GpuMemoryThresholdOneTurnsTheGateOffWithAWarning) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  auto off = runtime_for(config_from({{"GPU_MEMORY_THRESHOLD", "1.0"}}));
  spdlog::default_logger()->sinks().pop_back();
  ASSERT_NE(off, nullptr);
  EXPECT_TRUE(off->first().gate->stats().count_only);
  EXPECT_NE(log.str().find("GPU_MEMORY_THRESHOLD=1.0: the memory gate is off"), std::string::npos)
      << log.str();
  EXPECT_EQ(run_tasks(*off, 4), 4);

  auto on = runtime_for(config_from({{"GPU_MEMORY_THRESHOLD", "0.85"}}));
  ASSERT_NE(on, nullptr);
  EXPECT_FALSE(on->first().gate->stats().count_only);
}

}  // namespace
}  // namespace segmentor
