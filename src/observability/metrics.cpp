#include "observability/metrics.h"

#include <prometheus/text_serializer.h>

#include <chrono>
#include <sstream>

namespace segmentor {

namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

prometheus::Gauge& gauge(prometheus::Registry& registry, const std::string& name,
                         const std::string& help) {
  return BuildGauge().Name(name).Help(help).Register(registry).Add({});
}

// A gauge per device: the family, with samples added per `device` label as lanes report.
prometheus::Family<prometheus::Gauge>& device_gauge(prometheus::Registry& registry,
                                                    const std::string& name,
                                                    const std::string& help) {
  return BuildGauge().Name(name).Help(help).Register(registry);
}

prometheus::Counter& counter(prometheus::Registry& registry, const std::string& name,
                             const std::string& help) {
  return BuildCounter().Name(name).Help(help).Register(registry).Add({});
}

double seconds(std::chrono::nanoseconds ns) { return std::chrono::duration<double>(ns).count(); }

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      gpu_memory_used_(device_gauge(*registry_, "gpu_memory_used_bytes",
                                    "Memory in use on the GPU by every process (total - free)")),
      gpu_memory_available_(
          device_gauge(*registry_, "gpu_memory_available_bytes",
                       "Memory this worker may still plan with (budget - reserved)")),
      oom_errors_(counter(*registry_, "segmentation_oom_errors_total",
                          "Out-of-memory errors seen by model calls")),
      retry_attempts_(counter(*registry_, "segmentation_retry_attempts_total",
                              "Task retries after an out-of-memory error")),
      duration_family_(BuildHistogram()
                           .Name("segmentation_processing_duration_seconds")
                           .Help("Time from admission to masks written, per task")
                           .Register(*registry_)),
      concurrent_tasks_(gauge(*registry_, "concurrent_segmentation_tasks",
                              "Tasks admitted by the memory gate and not yet finished")),
      gate_limit_(device_gauge(*registry_, "segmentation_gate_limit_bytes",
                               "The admission gate's current limit (resident + task room)")),
      gate_budget_(device_gauge(*registry_, "segmentation_gate_budget_bytes",
                                "Memory budget read from the device (min(card, cap) - others)")),
      gate_in_flight_bytes_(device_gauge(*registry_, "segmentation_gate_in_flight_bytes",
                                         "Predicted bytes of the tasks in flight")),
      gate_waiting_(device_gauge(*registry_, "segmentation_gate_waiting_tasks",
                                 "Tasks waiting for the memory gate")),
      concurrency_cap_(device_gauge(*registry_, "segmentation_concurrency_cap",
                                    "Most tasks the gate admits at once (MAX_CONCURRENT_IMAGES, "
                                    "or lower where CONCURRENCY_TUNING found it faster)")),
      allocator_reserved_(device_gauge(*registry_, "gpu_allocator_reserved_bytes",
                                       "Bytes the caching allocator holds from the driver")),
      allocator_allocated_(
          device_gauge(*registry_, "gpu_allocator_allocated_bytes", "Bytes in live tensors")),
      allocator_peak_reserved_(device_gauge(*registry_, "gpu_allocator_peak_reserved_bytes",
                                            "Peak reserved bytes since the last reset")),
      cache_releases_(counter(*registry_, "gpu_cache_releases_total",
                              "Times the allocator cache was returned to the driver")),
      cache_release_seconds_(counter(*registry_, "gpu_cache_release_seconds_total",
                                     "Time spent releasing the allocator cache")),
      cpu_fallbacks_(counter(*registry_, "segmentation_cpu_fallbacks_total",
                             "Tasks moved to the CPU lane after GPU retries ran out")),
      failed_by_oom_(counter(*registry_, "segmentation_failed_by_oom_total",
                             "Tasks that failed after the whole recovery ladder")),
      gpu_utilization_(device_gauge(*registry_, "gpu_utilization_percent",
                                    "GPU utilisation from NVML (absent reading = -1)")),
      tasks_family_(BuildCounter()
                        .Name("segmentation_tasks_total")
                        .Help("Finished tasks by asset type and outcome")
                        .Register(*registry_)),
      messages_family_(BuildCounter()
                           .Name("segmentor_messages_total")
                           .Help("Consumed broker messages by topic and outcome")
                           .Register(*registry_)),
      calibrated_family_(BuildGauge()
                             .Name("segmentation_calibrated_task_bytes")
                             .Help("Bytes one task needs, measured at start-up, by device, model "
                                   "and source size class")
                             .Register(*registry_)),
      resident_bytes_(device_gauge(*registry_, "gpu_model_resident_bytes",
                                   "Model weights held on the device, measured at start-up")),
      readmissions_(counter(*registry_, "segmentation_gate_readmissions_total",
                            "Tasks re-admitted by the gate after an out-of-memory back-off")),
      gate_at_floor_(device_gauge(*registry_, "segmentation_gate_at_floor",
                                  "1 while out-of-memory back-offs hold the gate's limit at its "
                                  "floor (MIN_CONCURRENT_IMAGES x the largest task)")),
      gate_count_only_(device_gauge(*registry_, "segmentation_gate_count_only",
                                    "1 when GPU_MEMORY_THRESHOLD=1.0 turned the memory gate off "
                                    "(admission by count alone)")),
      ready_(gauge(*registry_, "segmentor_ready",
                   "1 when /readyz answers 200 (models loaded, broker and database up)")) {}

void Metrics::set_calibration(const std::string& device, const CalibrationTable& table) {
  for (const CalibrationRow& row : table.rows()) {
    calibrated_family_
        .Add({{"device", device},
              {"model", row.model},
              {"size_class", std::string(to_string(row.size_class))}})
        .Set(static_cast<double>(row.peak_bytes));
  }
  resident_bytes_.Add({{"device", device}}).Set(static_cast<double>(table.resident_bytes()));
}

void Metrics::observe_task(std::string_view asset_type, std::string_view outcome, double secs) {
  static const prometheus::Histogram::BucketBoundaries kBuckets{0.01, 0.025, 0.05, 0.1,  0.25, 0.5,
                                                                1.0,  2.5,   5.0,  10.0, 30.0};
  const std::string type(asset_type);
  duration_family_.Add({{"asset_type", type}}, kBuckets).Observe(secs);
  tasks_family_.Add({{"asset_type", type}, {"outcome", std::string(outcome)}}).Increment();
}

void Metrics::set_concurrent_tasks(int tasks) { concurrent_tasks_.Set(tasks); }

void Metrics::set_ready(bool ready) { ready_.Set(ready ? 1.0 : 0.0); }

void Metrics::count_message(std::string_view topic, std::string_view outcome) {
  messages_family_.Add({{"topic", std::string(topic)}, {"outcome", std::string(outcome)}})
      .Increment();
}

void Metrics::add_delta(prometheus::Counter& c, const std::string& key, double total) {
  double& last = last_totals_[key];
  if (total > last) c.Increment(total - last);
  last = total;
}

void Metrics::update_memory(std::span<const LaneReading> lanes) {
  int in_flight = 0;
  RecoveryStats recovery;
  std::uint64_t releases = 0;
  std::uint64_t readmissions = 0;
  std::chrono::nanoseconds release_time{0};
  for (const LaneReading& lane : lanes) {
    const prometheus::Labels labels{{"device", lane.device}};
    const MemorySnapshot& device = lane.memory;
    gpu_memory_used_.Add(labels).Set(
        static_cast<double>(device.device_total_bytes - device.device_free_bytes));
    gpu_memory_available_.Add(labels).Set(static_cast<double>(
        std::max<std::int64_t>(0, device.budget_bytes() - device.reserved_bytes)));
    allocator_reserved_.Add(labels).Set(static_cast<double>(device.reserved_bytes));
    allocator_allocated_.Add(labels).Set(static_cast<double>(device.allocated_bytes));
    allocator_peak_reserved_.Add(labels).Set(static_cast<double>(device.peak_reserved_bytes));
    gpu_utilization_.Add(labels).Set(device.gpu_utilization_percent.value_or(-1.0));
    gate_limit_.Add(labels).Set(static_cast<double>(lane.gate.limit_bytes));
    gate_budget_.Add(labels).Set(static_cast<double>(lane.gate.budget_bytes));
    gate_in_flight_bytes_.Add(labels).Set(static_cast<double>(lane.gate.in_flight_bytes));
    gate_waiting_.Add(labels).Set(lane.gate.waiting);
    concurrency_cap_.Add(labels).Set(lane.gate.concurrency_cap);
    gate_at_floor_.Add(labels).Set(lane.gate.at_floor ? 1.0 : 0.0);
    gate_count_only_.Add(labels).Set(lane.gate.count_only ? 1.0 : 0.0);
    in_flight += lane.gate.in_flight;
    recovery += lane.recovery;
    releases += lane.cache.releases_total;
    release_time += lane.cache.release_time_total;
    readmissions += lane.gate.readmitted_total;
  }
  concurrent_tasks_.Set(in_flight);

  std::lock_guard lock(counter_mutex_);
  add_delta(oom_errors_, "oom", static_cast<double>(recovery.oom_events));
  add_delta(retry_attempts_, "retries", static_cast<double>(recovery.retries));
  add_delta(cpu_fallbacks_, "cpu_fallbacks", static_cast<double>(recovery.cpu_fallbacks));
  add_delta(failed_by_oom_, "failed", static_cast<double>(recovery.failed_tasks));
  add_delta(cache_releases_, "releases", static_cast<double>(releases));
  add_delta(readmissions_, "readmissions", static_cast<double>(readmissions));
  add_delta(cache_release_seconds_, "release_seconds", seconds(release_time));
}

std::string Metrics::serialize() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace segmentor
