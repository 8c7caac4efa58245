// The worker's Prometheus metrics: the names of the design document plus what operators need to
// see the memory manager work. One instance per process, owned by the command that runs, passed
// by reference (no global registry).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "memory/admission_gate.h"
#include "memory/cache_policy.h"
#include "memory/calibration.h"
#include "memory/device_memory.h"
#include "memory/oom_recovery.h"

namespace segmentor {

// What one lane's memory manager reads at one moment.
struct LaneReading {
  std::string device;  // "cuda:0"
  MemorySnapshot memory;
  GateStats gate;
  RecoveryStats recovery;
  CacheStats cache;
};

// Thread-safe: prometheus-cpp metrics are atomic; counter_mutex_ guards the delta bookkeeping
// that turns the memory manager's running totals into counter increments.
class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // One finished task: asset_type "image" | "video_frame", outcome "done" | "failed".
  void observe_task(std::string_view asset_type, std::string_view outcome, double seconds);
  void set_concurrent_tasks(int tasks);
  // What /readyz says (1 ready, 0 not), for the "worker not ready" alert.
  void set_ready(bool ready);
  // One consumed message: outcome "acked" | "retried" | "dead_lettered".
  void count_message(std::string_view topic, std::string_view outcome);

  // Copies the memory manager's readings, one per lane (GPU): per-device gauges carry a `device`
  // label; counters are summed over the lanes, and each running total becomes a counter increment
  // (a total only ever grows, so the difference since the last call is added).
  void update_memory(std::span<const LaneReading> lanes);

  // A lane's start-up calibration (once, after the runtime is built): one gauge per measured
  // model and size class, and the resident weights, labelled with the device.
  void set_calibration(const std::string& device, const CalibrationTable& table);

  // The Prometheus text exposition of everything.
  std::string serialize() const;
  prometheus::Registry& registry() { return *registry_; }

 private:
  void add_delta(prometheus::Counter& counter, const std::string& key, double total);

  std::shared_ptr<prometheus::Registry> registry_;
  // Design-document names.
  prometheus::Family<prometheus::Gauge>& gpu_memory_used_;
  prometheus::Family<prometheus::Gauge>& gpu_memory_available_;
  prometheus::Counter& oom_errors_;
  prometheus::Counter& retry_attempts_;
  prometheus::Family<prometheus::Histogram>& duration_family_;
  prometheus::Gauge& concurrent_tasks_;
  // Memory manager detail.
  prometheus::Family<prometheus::Gauge>& gate_limit_;
  prometheus::Family<prometheus::Gauge>& gate_budget_;
  prometheus::Family<prometheus::Gauge>& gate_in_flight_bytes_;
  prometheus::Family<prometheus::Gauge>& gate_waiting_;
  prometheus::Family<prometheus::Gauge>& concurrency_cap_;
  prometheus::Family<prometheus::Gauge>& allocator_reserved_;
  prometheus::Family<prometheus::Gauge>& allocator_allocated_;
  prometheus::Family<prometheus::Gauge>& allocator_peak_reserved_;
  prometheus::Counter& cache_releases_;
  prometheus::Counter& cache_release_seconds_;
  prometheus::Counter& cpu_fallbacks_;
  prometheus::Counter& failed_by_oom_;
  prometheus::Family<prometheus::Gauge>& gpu_utilization_;
  prometheus::Family<prometheus::Counter>& tasks_family_;
  prometheus::Family<prometheus::Counter>& messages_family_;
  prometheus::Family<prometheus::Gauge>& calibrated_family_;
  prometheus::Family<prometheus::Gauge>& resident_bytes_;
  prometheus::Counter& readmissions_;
  prometheus::Family<prometheus::Gauge>& gate_at_floor_;
  prometheus::Family<prometheus::Gauge>& gate_count_only_;
  prometheus::Gauge& ready_;

  std::mutex counter_mutex_;
  std::map<std::string, double> last_totals_;
};

}  // namespace segmentor
