// The load generator on the CPU with the test models: counts add up, the legacy mode loses frames
// an OOM hits, and the recovery ladder saves them in the adaptive mode.
#include "bench/bench_runner.h"

#include <gtest/gtest.h>

#include <cmath>

#include "models/model_loader.h"
#include "runtime/runtime.h"

namespace segmentor {
namespace {

Config test_config() {
  Config config;
  config.device = "cpu";
  config.foreground_model = std::string(SEGMENTOR_TEST_MODELS_DIR) + "/test-bright.pt";
  config.people_model = std::string(SEGMENTOR_TEST_MODELS_DIR) + "/test-yolo.pt";
  config.cpu_threads = 2;
  return config;
}

class BenchRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto runtime = build_runtime(config_);
    ASSERT_TRUE(runtime.ok()) << runtime.status().to_string();
    runtime_ = std::move(*runtime);
  }

  BenchRunOptions small_run(GateSpec gate) const {
    BenchRunOptions options;
    options.gate = gate;
    options.jobs = 2;
    options.frames_per_job = 3;
    options.in_flight_per_job = 2;
    options.fhd_fraction = 0.5;
    options.sample_interval = std::chrono::milliseconds(5);
    options.card = "cpu";
    options.backoff = std::vector<std::chrono::nanoseconds>{};  // no waiting between retries
    return options;
  }

  Config config_ = test_config();
  // Rebuilds the runtime so that every model call on its (CPU) primary lane fails with an
  // injected out-of-memory error.
  void inject_ooms(double rate) {
    config_.inject_oom_rate = rate;
    auto runtime = build_runtime(config_);
    ASSERT_TRUE(runtime.ok()) << runtime.status().to_string();
    runtime_ = std::move(*runtime);
  }
  std::unique_ptr<Runtime> runtime_;
  BenchFrames frames_ = generate_frames(1);
};

TEST_F(BenchRunnerTest, FramesAreDoneOrLostAndTheReportIsConsistent) {
  auto report = run_bench(*runtime_, config_, frames_, small_run({GateMode::kAdaptive, 0}));
  ASSERT_TRUE(report.ok()) << report.status().to_string();
  EXPECT_EQ(report->frames, 6);
  EXPECT_EQ(report->frames_done + report->frames_lost, report->frames);
  EXPECT_EQ(report->frames_done, 6)
      << (report->first_errors.empty() ? "" : report->first_errors[0]);
  EXPECT_EQ(report->hd_frames + report->fhd_frames, report->frames);
  EXPECT_EQ(report->fhd_frames, 3);
  EXPECT_EQ(report->gate, "adaptive");
  EXPECT_EQ(report->frames_by_lane.at("cpu"), 6);
  EXPECT_GT(report->throughput_fps, 0);
  EXPECT_LE(report->p50_ms, report->p95_ms);
  EXPECT_LE(report->p95_ms, report->p99_ms);
  EXPECT_FALSE(report->samples.empty());
  EXPECT_GE(report->samples.back().t_seconds, report->samples.front().t_seconds);
  EXPECT_EQ(report->models, (std::vector<std::string>{"test-bright", "test-yolo"}));
  EXPECT_TRUE(report->test_models);
  EXPECT_EQ(report->oom_events, 0U);
}

// Note [Where the time goes]: every stage of a written run is measured, and the model's stages
// (CPU here, so without stream syncs) fit within the time on the lane.
TEST_F(BenchRunnerTest, ReportsWhereTheTimeGoesStageByStage) {
  BenchRunOptions options = small_run({GateMode::kAdaptive, 0});
  options.write_masks = true;
  auto report = run_bench(*runtime_, config_, frames_, options);
  ASSERT_TRUE(report.ok()) << report.status().to_string();
  ASSERT_EQ(report->frames_done, 6);
  ASSERT_TRUE(report->stage_seconds_per_frame.has_value());
  const StageTimes& t = *report->stage_seconds_per_frame;
  for (const Stage stage :
       {Stage::kUpload, Stage::kModel, Stage::kPostprocess, Stage::kEncode, Stage::kWrite}) {
    EXPECT_GT(t[stage], 0.0) << to_string(stage);
  }
  // Pre-decoded frames skip the decoder; "decode" is then only the copy of the pixels.
  EXPECT_LT(t[Stage::kDecode], report->mean_ms / 1000.0);
  const double on_lane = t[Stage::kUpload] + t[Stage::kModel] + t[Stage::kPostprocess];
  // Within the time on the lane (which also holds the wait for the serial CPU lane's mutex).
  EXPECT_LE(on_lane, report->mean_segment_ms / 1000.0 * 1.01 + 1e-4);
  EXPECT_TRUE(report->masks_written);

  options.stage_times = false;
  options.write_masks = false;
  auto without = run_bench(*runtime_, config_, frames_, options);
  ASSERT_TRUE(without.ok());
  EXPECT_FALSE(without->stage_seconds_per_frame.has_value());
}

TEST_F(BenchRunnerTest, FixedGateAdmitsByCountUpToN) {
  auto report = run_bench(*runtime_, config_, frames_, small_run({GateMode::kFixed, 1}));
  ASSERT_TRUE(report.ok()) << report.status().to_string();
  EXPECT_EQ(report->frames_done, 6);
  EXPECT_EQ(report->gate_max_concurrent, 1);
  EXPECT_EQ(report->peak_in_flight, 1);
}

TEST_F(BenchRunnerTest, LegacyModeLosesEveryFrameAnOomHits) {
  inject_ooms(1.0);
  auto report = run_bench(*runtime_, config_, frames_, small_run({GateMode::kLegacy, 0}));
  ASSERT_TRUE(report.ok()) << report.status().to_string();
  EXPECT_EQ(report->frames_done, 0);
  EXPECT_EQ(report->frames_lost, 6);
  EXPECT_EQ(report->failed_by_oom, 6);
  EXPECT_EQ(report->oom_events, 6U);
  EXPECT_EQ(report->retries, 0U);
  EXPECT_EQ(report->cpu_fallbacks, 0U);
  EXPECT_EQ(report->gate_max_concurrent, 4);  // every submitted frame runs: 2 jobs × 2
  EXPECT_DOUBLE_EQ(report->injected_oom_rate, 1.0);
  ASSERT_FALSE(report->first_errors.empty());
  EXPECT_NE(report->first_errors[0].find("out of memory"), std::string::npos);
}

TEST_F(BenchRunnerTest, AdaptiveModeRetriesThenFallsBackAndLosesNothing) {
  // A primary that always runs out of memory, and a clean CPU lane as the fallback.
  inject_ooms(1.0);
  ModelOptions options;
  options.device = "cpu";
  auto fg = load_mask_model(config_.foreground_model, options);
  auto people = load_mask_model(config_.people_model, options);
  ASSERT_TRUE(fg.ok() && people.ok());
  auto lane = std::make_unique<ModelSet>();
  lane->name = "cpu-fallback";
  lane->serialize = true;
  lane->foreground = std::move(*fg);
  lane->people = std::move(*people);
  runtime_->cpu_lane = std::move(lane);

  auto report = run_bench(*runtime_, config_, frames_, small_run({GateMode::kAdaptive, 0}));
  ASSERT_TRUE(report.ok()) << report.status().to_string();
  EXPECT_EQ(report->frames_lost, 0);
  EXPECT_EQ(report->failed_by_oom, 0);
  EXPECT_EQ(report->frames_done, 6);
  EXPECT_EQ(report->cpu_fallbacks, 6U);
  EXPECT_EQ(report->retries, 6U * static_cast<unsigned>(config_.max_oom_retries));
  // On the CPU lane, injected OOMs strike with the machine's memory to spare: each frame's first
  // retry is at once, and no OOM counts against admission.
  EXPECT_EQ(report->immediate_retries, 6U);
  EXPECT_EQ(report->below_budget_ooms, report->oom_events);
  EXPECT_EQ(report->over_admission_ooms, 0U);
  EXPECT_EQ(report->oom_events, 6U * (1U + static_cast<unsigned>(config_.max_oom_retries)));
  EXPECT_EQ(report->frames_by_lane.at("cpu-fallback"), 6);
}

// The adaptive bench guards each lane exactly as the runtime does for run and serve: same gate
// settings and resident weights, same ladder settings. Unusual values, so defaults cannot agree
// by accident.
TEST(BenchGuards, TheAdaptiveRunGuardsEachLaneAsTheRuntimeDoes) {
  Config config = test_config();
  config.max_concurrent_images = 3;
  config.min_concurrent_images = 2;
  config.gpu_memory_threshold = 0.7;
  config.max_oom_retries = 5;
  config.retry_on_oom = false;
  auto runtime = build_runtime(config);
  ASSERT_TRUE(runtime.ok()) << runtime.status().to_string();
  const DeviceLane& lane = (*runtime)->first();

  BenchRunOptions run;
  run.gate = {GateMode::kAdaptive, 0};
  const LaneGuardOptions options = bench_guard_options(config, run);
  const LaneGuardOptions production = lane_guard_options(config);
  EXPECT_EQ(options.gate.memory_threshold, production.gate.memory_threshold);
  EXPECT_EQ(options.gate.min_concurrent, 2);
  EXPECT_EQ(options.gate.max_concurrent, 3);
  EXPECT_EQ(options.recovery.retry_on_oom, false);
  EXPECT_EQ(options.recovery.max_oom_retries, 5);
  EXPECT_TRUE(options.cache_policy);
  EXPECT_TRUE(options.release_after_oom);

  auto guards = build_lane_guards(config, *lane.device, lane.resident, options);
  ASSERT_TRUE(guards.ok()) << guards.status().to_string();
  const GateStats bench = guards->gate->stats();
  const GateStats serve = lane.gate->stats();
  // Each model's weights are registered on their own (host RAM reads 0 bytes for them here).
  EXPECT_TRUE(lane.resident.count(lane.lane->foreground->info().name));
  EXPECT_TRUE(lane.resident.count("models"));
  EXPECT_EQ(bench.resident_bytes, serve.resident_bytes);
  EXPECT_EQ(bench.concurrency_cap, serve.concurrency_cap);
  // The same threshold over each gate's own reading of the device. Not the same bytes: each gate
  // read host RAM when it was built, and RAM moves between the two readings when other tests run
  // beside this one (it failed so under `ctest -j3`).
  const auto thresholded = [&](const GateStats& stats) {
    return static_cast<std::int64_t>(
        std::floor(static_cast<double>(stats.budget_bytes) * config.gpu_memory_threshold));
  };
  EXPECT_GT(bench.budget_bytes, 0);
  EXPECT_EQ(bench.threshold_budget_bytes, thresholded(bench));
  EXPECT_EQ(serve.threshold_budget_bytes, thresholded(serve));
  EXPECT_EQ(bench.aimd_cap_bytes.has_value(), serve.aimd_cap_bytes.has_value());
}

// fixed:N and legacy change only what Note [Bench gate modes] says they change.
TEST(BenchGuards, FixedAndLegacyChangeOnlyTheirOwnSettings) {
  const Config config = test_config();
  BenchRunOptions run;
  run.jobs = 3;
  run.in_flight_per_job = 2;
  run.gate = {GateMode::kFixed, 5};
  const LaneGuardOptions fixed = bench_guard_options(config, run);
  EXPECT_EQ(fixed.gate.min_concurrent, 5);
  EXPECT_EQ(fixed.gate.max_concurrent, 5);
  EXPECT_FALSE(fixed.concurrency_tuner);
  EXPECT_TRUE(fixed.recovery.retry_on_oom);
  EXPECT_TRUE(fixed.cache_policy);

  run.gate = {GateMode::kLegacy, 0};
  const LaneGuardOptions legacy = bench_guard_options(config, run);
  EXPECT_EQ(legacy.gate.max_concurrent, 6);
  EXPECT_FALSE(legacy.recovery.retry_on_oom);
  EXPECT_FALSE(legacy.release_after_oom);
  EXPECT_FALSE(legacy.cache_policy);
}

TEST_F(BenchRunnerTest, RejectsBadLoads) {
  BenchRunOptions options = small_run({GateMode::kAdaptive, 0});
  options.jobs = 0;
  EXPECT_FALSE(run_bench(*runtime_, config_, frames_, options).ok());
  options = small_run({GateMode::kAdaptive, 0});
  options.fhd_fraction = 1.5;
  EXPECT_FALSE(run_bench(*runtime_, config_, frames_, options).ok());
}

}  // namespace
}  // namespace segmentor
