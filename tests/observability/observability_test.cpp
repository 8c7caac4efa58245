#include <gtest/gtest.h>

#include <atomic>
#include <span>
#include <string>
#include <vector>

#include "observability/http_endpoint.h"
#include "observability/metrics.h"
#include "support/loopback_http.h"

namespace segmentor {
namespace {

// The value of the first sample line that starts with `series` ("name" or "name{labels}").
double sample(const std::string& text, const std::string& series) {
  std::size_t pos = 0;
  while ((pos = text.find(series, pos)) != std::string::npos) {
    const bool line_start = pos == 0 || text[pos - 1] == '\n';
    const std::size_t after = pos + series.size();
    if (line_start && after < text.size() && text[after] == ' ') {
      return std::stod(text.substr(after + 1));
    }
    pos = after;
  }
  ADD_FAILURE() << "no sample " << series << " in:\n" << text;
  return -1;
}

TEST(MetricsTest, ExposesEveryNameTheDesignDocumentPromises) {
  Metrics metrics;
  metrics.observe_task("image", "done", 0.2);
  const LaneReading lane{"cuda:0", {}, {}, {}, {}};
  metrics.update_memory(std::span(&lane, 1));  // per-device series appear once a lane reports
  const std::string text = metrics.serialize();
  for (const char* name :
       {"gpu_memory_used_bytes", "gpu_memory_available_bytes", "segmentation_oom_errors_total",
        "segmentation_retry_attempts_total", "segmentation_processing_duration_seconds_bucket",
        "concurrent_segmentation_tasks", "segmentation_gate_limit_bytes",
        "gpu_allocator_reserved_bytes", "gpu_allocator_allocated_bytes", "gpu_cache_releases_total",
        "segmentation_cpu_fallbacks_total", "gpu_utilization_percent"}) {
    EXPECT_NE(text.find(name), std::string::npos) << name;
  }
}

TEST(MetricsTest, RunningTotalsBecomeCounterIncrementsAndGaugesFollowReadings) {
  Metrics metrics;
  MemorySnapshot device;
  device.device_total_bytes = 100;
  device.device_free_bytes = 40;
  device.reserved_bytes = 30;
  device.allocated_bytes = 20;
  GateStats gate;
  gate.limit_bytes = 85;
  gate.in_flight = 3;
  RecoveryStats recovery;
  recovery.oom_events = 2;
  recovery.retries = 1;
  CacheStats cache;
  cache.releases_total = 4;
  std::vector<LaneReading> lanes{{"cuda:0", device, gate, recovery, cache}};
  metrics.update_memory(lanes);
  lanes[0].recovery.oom_events = 5;
  lanes[0].recovery.cpu_fallbacks = 1;
  metrics.update_memory(lanes);

  const std::string text = metrics.serialize();
  EXPECT_EQ(sample(text, "segmentation_oom_errors_total"), 5);
  EXPECT_EQ(sample(text, "segmentation_retry_attempts_total"), 1);
  EXPECT_EQ(sample(text, "segmentation_cpu_fallbacks_total"), 1);
  EXPECT_EQ(sample(text, "gpu_cache_releases_total"), 4);
  EXPECT_EQ(sample(text, "gpu_memory_used_bytes{device=\"cuda:0\"}"), 60);
  EXPECT_EQ(sample(text, "gpu_allocator_reserved_bytes{device=\"cuda:0\"}"), 30);
  EXPECT_EQ(sample(text, "segmentation_gate_limit_bytes{device=\"cuda:0\"}"), 85);
  EXPECT_EQ(sample(text, "concurrent_segmentation_tasks"), 3);
}

TEST(MetricsTest, EachGpuLaneHasItsOwnGaugesAndCountersAreSummed) {
  Metrics metrics;
  LaneReading first{"cuda:0", {}, {}, {}, {}};
  first.memory.reserved_bytes = 100;
  first.gate.in_flight = 2;
  first.recovery.oom_events = 3;
  LaneReading second{"cuda:1", {}, {}, {}, {}};
  second.memory.reserved_bytes = 200;
  second.gate.in_flight = 4;
  second.recovery.oom_events = 1;
  std::vector<LaneReading> lanes{first, second};
  metrics.update_memory(lanes);
  lanes[1].recovery.oom_events = 6;  // the second lane's total grows by 5
  metrics.update_memory(lanes);

  const std::string text = metrics.serialize();
  EXPECT_EQ(sample(text, "gpu_allocator_reserved_bytes{device=\"cuda:0\"}"), 100);
  EXPECT_EQ(sample(text, "gpu_allocator_reserved_bytes{device=\"cuda:1\"}"), 200);
  EXPECT_EQ(sample(text, "concurrent_segmentation_tasks"), 6);
  EXPECT_EQ(sample(text, "segmentation_oom_errors_total"), 9);
}

TEST(MetricsTest, CalibrationAndReadmissionsAreExposed) {
  Metrics metrics;
  CalibrationTable table;
  table.set_resident_bytes("models", 1000);
  table.add_measurement("task", 1280, 720, 800);
  table.add_measurement("task", 1920, 1080, 900);
  metrics.set_calibration("cuda:0", table);
  LaneReading lane{"cuda:0", {}, {}, {}, {}};
  lane.gate.readmitted_total = 3;
  metrics.update_memory(std::span(&lane, 1));

  const std::string text = metrics.serialize();
  EXPECT_EQ(sample(text,
                   "segmentation_calibrated_task_bytes{device=\"cuda:0\",model=\"task\","
                   "size_class=\"hd\"}"),
            800);
  EXPECT_EQ(sample(text,
                   "segmentation_calibrated_task_bytes{device=\"cuda:0\",model=\"task\","
                   "size_class=\"fhd\"}"),
            900);
  EXPECT_EQ(sample(text, "gpu_model_resident_bytes{device=\"cuda:0\"}"), 1000);
  EXPECT_EQ(sample(text, "segmentation_gate_readmissions_total"), 3);
}

// What the operator alerts read (deploy/prometheus/rules/): the gate at its floor, the gate
// turned off by GPU_MEMORY_THRESHOLD=1.0, and readiness.
TEST(MetricsTest, GateStateAndReadinessForTheAlerts) {
  Metrics metrics;
  LaneReading pinned{"cuda:0", {}, {}, {}, {}};
  pinned.gate.at_floor = true;
  LaneReading off{"cuda:1", {}, {}, {}, {}};
  off.gate.count_only = true;
  const std::vector<LaneReading> lanes = {pinned, off};
  metrics.update_memory(lanes);
  metrics.set_ready(false);
  std::string text = metrics.serialize();
  EXPECT_EQ(sample(text, "segmentation_gate_at_floor{device=\"cuda:0\"}"), 1);
  EXPECT_EQ(sample(text, "segmentation_gate_at_floor{device=\"cuda:1\"}"), 0);
  EXPECT_EQ(sample(text, "segmentation_gate_count_only{device=\"cuda:0\"}"), 0);
  EXPECT_EQ(sample(text, "segmentation_gate_count_only{device=\"cuda:1\"}"), 1);
  EXPECT_EQ(sample(text, "segmentor_ready"), 0);
  metrics.set_ready(true);
  text = metrics.serialize();
  EXPECT_EQ(sample(text, "segmentor_ready"), 1);
}

TEST(MetricsTest, TaskOutcomesAreCountedByTypeAndOutcome) {
  Metrics metrics;
  metrics.observe_task("image", "done", 0.1);
  metrics.observe_task("image", "done", 0.3);
  metrics.observe_task("video_frame", "failed", 2.0);
  const std::string text = metrics.serialize();
  EXPECT_EQ(sample(text, "segmentation_tasks_total{asset_type=\"image\",outcome=\"done\"}"), 2);
  EXPECT_EQ(sample(text, "segmentation_tasks_total{asset_type=\"video_frame\",outcome=\"failed\"}"),
            1);
  EXPECT_EQ(sample(text, "segmentation_processing_duration_seconds_count{asset_type=\"image\"}"),
            2);
}

using fixtures::http_get;

int free_port() { return fixtures::free_loopback_port(); }

TEST(HttpEndpointTest, ServesMetricsHealthAndReadiness) {
  Metrics metrics;
  metrics.observe_task("image", "done", 0.5);
  std::atomic<bool> ready{false};
  auto endpoint = HttpEndpoint::create(
      {"127.0.0.1", free_port(), 2}, [&] { return metrics.serialize(); },
      [&] {
        return std::pair<bool, std::string>{ready.load(), ready ? "all good" : "no broker"};
      });
  ASSERT_TRUE(endpoint.ok()) << endpoint.status().to_string();
  const int port = (*endpoint)->port();

  const std::string m = http_get(port, "/metrics");
  EXPECT_NE(m.find("200 OK"), std::string::npos) << m;
  EXPECT_NE(m.find("segmentation_tasks_total"), std::string::npos);
  EXPECT_NE(http_get(port, "/healthz").find("200 OK"), std::string::npos);

  const std::string not_ready = http_get(port, "/readyz");
  EXPECT_NE(not_ready.find("503"), std::string::npos) << not_ready;
  EXPECT_NE(not_ready.find("no broker"), std::string::npos);
  ready = true;
  EXPECT_NE(http_get(port, "/readyz").find("200 OK"), std::string::npos);
  EXPECT_NE(http_get(port, "/nope").find("404"), std::string::npos);
}

TEST(HttpEndpointTest, APortInUseIsAClearError) {
  const int port = free_port();
  auto first = HttpEndpoint::create(
      {"127.0.0.1", port, 1}, [] { return std::string(); },
      [] {
        return std::pair<bool, std::string>{true, ""};
      });
  ASSERT_TRUE(first.ok());
  auto second = HttpEndpoint::create(
      {"127.0.0.1", port, 1}, [] { return std::string(); },
      [] {
        return std::pair<bool, std::string>{true, ""};
      });
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(std::to_string(port)), std::string::npos);
}

}  // namespace
}  // namespace segmentor
