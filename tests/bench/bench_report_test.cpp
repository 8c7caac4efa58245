// The bench's pure parts: percentile maths, the JSON and markdown reports, result file names, the
// gate-mode parser and the PNG plot.
#include "bench/bench_report.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/bench_plot.h"
#include "bench/bench_runner.h"
#include "imaging/decode.h"
#include "support/temp_dir.h"

namespace segmentor {
namespace {

TEST(Percentile, InterpolatesBetweenClosestRanks) {
  const std::vector<double> values = {5, 1, 4, 2, 3};  // sorted: 1 2 3 4 5
  EXPECT_DOUBLE_EQ(percentile(values, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(values, 50), 3);
  EXPECT_DOUBLE_EQ(percentile(values, 100), 5);
  EXPECT_DOUBLE_EQ(percentile(values, 95), 4.8);  // rank 3.8
  EXPECT_DOUBLE_EQ(percentile(values, 25), 2);
  EXPECT_DOUBLE_EQ(percentile({}, 50), 0);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
}

TEST(Percentile, FillLatencyConvertsSecondsToMilliseconds) {
  std::vector<double> seconds;
  for (int i = 1; i <= 100; ++i) seconds.push_back(i / 100.0);  // 10 ms .. 1000 ms
  BenchRunReport report;
  fill_latency(report, seconds);
  EXPECT_NEAR(report.p50_ms, 505, 1e-9);
  EXPECT_NEAR(report.p95_ms, 950.5, 1e-9);
  EXPECT_NEAR(report.p99_ms, 990.1, 1e-9);
  EXPECT_NEAR(report.mean_ms, 505, 1e-9);
}

BenchRunReport sample_report(const std::string& gate, double fps) {
  BenchRunReport r;
  r.card = "NVIDIA H100 80GB HBM3";
  r.date = "2025-11-27T06:43:00Z";
  r.cap_gib = 8;
  r.gate = gate;
  r.jobs = 4;
  r.frames_per_job = 250;
  r.frames = 1000;
  r.frames_done = 990;
  r.frames_lost = gate == "legacy" ? 10 : 0;
  r.frames_done = r.frames - r.frames_lost;
  r.failed_by_oom = r.frames_lost;
  r.throughput_fps = fps;
  r.models = {"rmbg2-standin", "yolo11l-seg-standin"};
  r.samples = {{0.0, 100, 50, 1000, 1, 0}, {0.05, 200, 150, 900, 2, 1}};
  return r;
}

TEST(BenchReport, JsonCarriesEveryRequiredField) {
  const auto json = nlohmann::json::parse(to_json(sample_report("adaptive", 50)));
  for (const char* field :
       {"card", "date", "cap_gib", "gate", "jobs", "frames", "frames_lost", "failed_by_oom",
        "oom_events", "retries", "cpu_fallbacks", "injected_oom_rate", "throughput_fps", "p50_ms",
        "p95_ms", "p99_ms", "peak_reserved_bytes", "models", "samples"}) {
    EXPECT_TRUE(json.contains(field)) << field;
  }
  EXPECT_EQ(json["gate"], "adaptive");
  EXPECT_EQ(json["models"][1], "yolo11l-seg-standin");
  EXPECT_EQ(json["samples"].size(), 2U);
  EXPECT_EQ(json["samples"][1]["gate_limit"], 900);
  EXPECT_TRUE(json["ceiling_fps"].is_null());
}

TEST(BenchReport, MarkdownComparesAdaptiveWithTheBestLosslessFixedRun) {
  std::vector<BenchRunReport> runs = {sample_report("fixed:1", 40), sample_report("fixed:2", 60),
                                      sample_report("legacy", 90), sample_report("adaptive", 57)};
  const std::string table = to_markdown(runs);
  EXPECT_NE(table.find("| legacy |"), std::string::npos);
  // legacy lost frames, so it is not a candidate; fixed:2 is the best; 57 / 60 = 95.0 %.
  EXPECT_NE(table.find("best fixed concurrency without losses fixed:2 at 60.0 frames/s; adaptive "
                       "57.0 frames/s = 95.0 %"),
            std::string::npos)
      << table;
}

TEST(BenchReport, StagesGoToJsonAndToTheirOwnTable) {
  BenchRunReport with = sample_report("adaptive", 50);
  StageTimes t;
  t[Stage::kModel] = 0.0125;
  t[Stage::kGateWait] = 0.002;
  with.stage_seconds_per_frame = t;
  with.below_budget_ooms = 3;
  const auto json = nlohmann::json::parse(to_json(with));
  EXPECT_DOUBLE_EQ(json["stage_ms_per_frame"]["model"].get<double>(), 12.5);
  EXPECT_DOUBLE_EQ(json["stage_ms_per_frame"]["gate_wait"].get<double>(), 2.0);
  EXPECT_EQ(json["stage_ms_per_frame"].size(), kStageCount);
  EXPECT_EQ(json["below_budget_ooms"], 3);
  const std::string table = to_markdown({with});
  EXPECT_NE(table.find("| decode | upload | model | postprocess | encode | write | gate_wait |"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("| 8 | adaptive | 50.0 | 0.0 | 0.0 | 12.5 | 0.0 | 0.0 | 0.0 | 2.0 |"),
            std::string::npos)
      << table;

  const BenchRunReport without = sample_report("adaptive", 50);
  EXPECT_TRUE(nlohmann::json::parse(to_json(without))["stage_ms_per_frame"].is_null());
  EXPECT_EQ(stages_to_markdown({without}), "");
}

TEST(BenchReport, MeanBatchSizesGoToJsonAndMarkdown) {
  BenchRunReport batched = sample_report("adaptive", 50);
  batched.mean_batch = {{"isnet-medium", 6.5}, {"nanodet-g", 7.25}};
  const auto json = nlohmann::json::parse(to_json(batched));
  EXPECT_DOUBLE_EQ(json["mean_batch"]["isnet-medium"].get<double>(), 6.5);
  const std::string md = to_markdown({batched, sample_report("legacy", 40)});
  EXPECT_NE(md.find("- adaptive: isnet-medium 6.50 nanodet-g 7.25"), std::string::npos) << md;
  EXPECT_EQ(md.find("- legacy:"), std::string::npos);  // unbatched runs get no line
  EXPECT_EQ(to_markdown({sample_report("legacy", 40)}).find("Mean batch"), std::string::npos);
}

TEST(BenchReport, ResultStemNamesDateCardCapAndGate) {
  BenchRunReport r = sample_report("fixed:3", 1);
  EXPECT_EQ(result_stem(r), "20251127T064300Z_nvidia-h100-80gb-hbm3_cap8_fixed-3");
  r.injected_oom_rate = 0.1;
  r.gate = "adaptive";
  EXPECT_EQ(result_stem(r), "20251127T064300Z_nvidia-h100-80gb-hbm3_cap8_adaptive_inject0.10");
  EXPECT_EQ(slug("  A/B  c.d "), "a-b-c.d");
}

TEST(GateSpecTest, ParsesTheThreeModesAndRejectsTheRest) {
  EXPECT_EQ(GateSpec::parse("adaptive")->mode, GateMode::kAdaptive);
  EXPECT_EQ(GateSpec::parse("legacy")->mode, GateMode::kLegacy);
  auto fixed = GateSpec::parse("fixed:3");
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->mode, GateMode::kFixed);
  EXPECT_EQ(fixed->concurrency, 3);
  EXPECT_EQ(fixed->name(), "fixed:3");
  for (const char* bad : {"fixed:0", "fixed:", "fixed:2x", "fixed", "adaptiv", ""}) {
    EXPECT_FALSE(GateSpec::parse(bad).ok()) << bad;
  }
}

TEST(BenchPlot, WritesADecodablePngWithTheSeriesDrawn) {
  std::vector<MemorySample> samples;
  for (int i = 0; i <= 20; ++i) {
    samples.push_back({i * 0.05, (1LL << 30) + i * (1LL << 24), 1LL << 29, 3LL << 30, 1, 0});
  }
  PlotOptions options;
  options.width = 400;
  options.height = 200;
  options.cap_bytes = 4LL << 30;
  auto png = plot_memory_png(samples, options);
  ASSERT_TRUE(png.ok()) << png.status().to_string();
  fixtures::TempDir dir;
  {
    std::ofstream out(dir / "plot.png", std::ios::binary);
    out.write(reinterpret_cast<const char*>(png->data()),
              static_cast<std::streamsize>(png->size()));
  }
  auto image = decode_image_file(dir / "plot.png", DecodeOptions{});
  ASSERT_TRUE(image.ok()) << image.status().to_string();
  EXPECT_EQ(image->width, 400);
  EXPECT_EQ(image->height, 200);
  auto count = [&](const std::uint8_t* rgb) {
    int n = 0;
    for (std::size_t i = 0; i + 2 < image->pixels.size(); i += 3) {
      if (image->pixels[i] == rgb[0] && image->pixels[i + 1] == rgb[1] &&
          image->pixels[i + 2] == rgb[2]) {
        ++n;
      }
    }
    return n;
  };
  EXPECT_GT(count(PlotColours::kReserved), 100);
  EXPECT_GT(count(PlotColours::kGateLimit), 100);
  EXPECT_GT(count(PlotColours::kCap), 50);
  EXPECT_FALSE(plot_memory_png(samples, PlotOptions{100, 50, 0}).ok());
}

}  // namespace
}  // namespace segmentor
