#include "bench/bench_report.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "common/text.h"

namespace segmentor {

namespace {

double gib(std::int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }

std::string fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, value);
  return buffer;
}

}  // namespace

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::clamp(p, 0.0, 100.0) / 100.0 * static_cast<double>(values.size() - 1);
  const auto low = static_cast<std::size_t>(std::floor(rank));
  const std::size_t high = std::min(low + 1, values.size() - 1);
  const double fraction = rank - static_cast<double>(low);
  return values[low] + (values[high] - values[low]) * fraction;
}

void fill_latency(BenchRunReport& report, const std::vector<double>& latency_seconds) {
  report.p50_ms = 1000.0 * percentile(latency_seconds, 50);
  report.p95_ms = 1000.0 * percentile(latency_seconds, 95);
  report.p99_ms = 1000.0 * percentile(latency_seconds, 99);
  report.mean_ms = latency_seconds.empty()
                       ? 0
                       : 1000.0 *
                             std::accumulate(latency_seconds.begin(), latency_seconds.end(), 0.0) /
                             static_cast<double>(latency_seconds.size());
}

std::string to_json(const BenchRunReport& r) {
  nlohmann::ordered_json j;
  j["card"] = r.card;
  j["date"] = r.date;
  j["device"] = r.device;
  j["lanes"] = r.lanes;
  j["cap_gib"] = r.cap_gib;
  j["gate"] = r.gate;
  j["gate_max_concurrent"] = r.gate_max_concurrent;
  j["jobs"] = r.jobs;
  j["frames_per_job"] = r.frames_per_job;
  j["in_flight_per_job"] = r.in_flight_per_job;
  j["frames"] = r.frames;
  j["hd_frames"] = r.hd_frames;
  j["fhd_frames"] = r.fhd_frames;
  j["images"] = r.images;
  j["decode_included"] = r.decode_included;
  j["frames_done"] = r.frames_done;
  j["frames_lost"] = r.frames_lost;
  j["failed_by_oom"] = r.failed_by_oom;
  j["oom_events"] = r.oom_events;
  j["retries"] = r.retries;
  j["cpu_fallbacks"] = r.cpu_fallbacks;
  j["injected_oom_rate"] = r.injected_oom_rate;
  j["wall_seconds"] = r.wall_seconds;
  j["throughput_fps"] = r.throughput_fps;
  j["p50_ms"] = r.p50_ms;
  j["p95_ms"] = r.p95_ms;
  j["p99_ms"] = r.p99_ms;
  j["mean_ms"] = r.mean_ms;
  j["mean_gate_wait_ms"] = r.mean_gate_wait_ms;
  j["mean_segment_ms"] = r.mean_segment_ms;
  j["peak_reserved_bytes"] = r.peak_reserved_bytes;
  j["peak_allocated_bytes"] = r.peak_allocated_bytes;
  j["peak_in_flight"] = r.peak_in_flight;
  j["gate_shrinks"] = r.gate_shrinks;
  j["min_gate_limit_bytes"] = r.min_gate_limit_bytes;
  j["readmissions"] = r.readmissions;
  j["cache_releases"] = r.cache_releases;
  j["cache_release_ms_total"] = r.cache_release_ms_total;
  j["gpu_cleanup_every_n"] = r.gpu_cleanup_every_n;
  j["alloc_retries"] = r.alloc_retries;
  j["predicted_task_bytes"] = r.predicted_task_bytes;
  j["cuda_streams"] = r.cuda_streams;
  j["concurrency_tuning"] = r.concurrency_tuning;
  j["tuned_concurrency"] = r.tuned_concurrency;
  j["tuner_decisions"] = r.tuner_decisions;
  auto levels = nlohmann::ordered_json::array();
  for (const auto& [device, e] : r.tuner_levels) {
    levels.push_back({{"device", device},
                      {"level", e.level},
                      {"samples", e.samples},
                      {"lane_ms", 1000.0 * e.lane_seconds},
                      {"tasks_per_second", e.tasks_per_second}});
  }
  j["tuner_levels"] = std::move(levels);
  j["alloc_conf"] = r.alloc_conf;
  j["models"] = r.models;
  j["test_models"] = r.test_models;
  j["frames_by_lane"] = r.frames_by_lane;
  j["first_errors"] = r.first_errors;
  j["ceiling_fps"] = r.ceiling_fps ? nlohmann::ordered_json(*r.ceiling_fps) : nullptr;
  j["fraction_of_ceiling"] =
      r.fraction_of_ceiling ? nlohmann::ordered_json(*r.fraction_of_ceiling) : nullptr;
  j["over_admission_ooms"] = r.over_admission_ooms;
  j["below_budget_ooms"] = r.below_budget_ooms;
  j["immediate_retries"] = r.immediate_retries;
  j["backoff_ms_total"] = r.backoff_ms_total;
  j["masks_written"] = r.masks_written;
  j["mean_batch"] = r.mean_batch;
  if (r.stage_seconds_per_frame) {
    nlohmann::ordered_json stages;
    for (std::size_t i = 0; i < kStageCount; ++i) {
      const auto stage = static_cast<Stage>(i);
      stages[std::string(to_string(stage))] = 1000.0 * (*r.stage_seconds_per_frame)[stage];
    }
    j["stage_ms_per_frame"] = std::move(stages);
  } else {
    j["stage_ms_per_frame"] = nullptr;
  }
  auto samples = nlohmann::ordered_json::array();
  for (const MemorySample& s : r.samples) {
    samples.push_back({{"t", s.t_seconds},
                       {"reserved", s.reserved_bytes},
                       {"allocated", s.allocated_bytes},
                       {"gate_limit", s.gate_limit_bytes},
                       {"in_flight", s.in_flight},
                       {"waiting", s.waiting}});
  }
  j["samples"] = std::move(samples);
  return j.dump(2) + "\n";
}

std::string ceiling_to_json(const std::vector<ModelCeiling>& models, const std::string& card,
                            const std::string& date, double combined_fps) {
  nlohmann::ordered_json j;
  j["kind"] = "ceiling";
  j["card"] = card;
  j["date"] = date;
  j["combined_fps"] = combined_fps;
  auto list = nlohmann::ordered_json::array();
  for (const ModelCeiling& m : models) {
    nlohmann::ordered_json model;
    model["model"] = m.model;
    model["device"] = m.device;
    model["fp16"] = m.fp16;
    model["input"] = std::to_string(m.input_width) + "x" + std::to_string(m.input_height);
    model["best_batch"] = m.best_batch;
    model["best_fps"] = m.best_frames_per_second;
    auto points = nlohmann::ordered_json::array();
    for (const CeilingPoint& p : m.points) {
      points.push_back({{"batch", p.batch},
                        {"iterations", p.iterations},
                        {"ms_per_batch", p.ms_per_batch},
                        {"fps", p.frames_per_second},
                        {"out_of_memory", p.out_of_memory},
                        {"error", p.error}});
    }
    model["points"] = std::move(points);
    list.push_back(std::move(model));
  }
  j["models"] = std::move(list);
  return j.dump(2) + "\n";
}

std::string to_markdown(const std::vector<BenchRunReport>& runs) {
  std::string out =
      "| card | cap GiB | gate | jobs×frames | done | lost | failed by OOM | OOM events | retries "
      "| CPU fallbacks | inj. OOM | fps | p50 ms | p95 ms | p99 ms | peak reserved GiB | "
      "of ceiling |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const BenchRunReport& r : runs) {
    out += "| " + r.card + " | " + (r.cap_gib > 0 ? fixed(r.cap_gib, 0) : "card") + " | " + r.gate +
           " | " + std::to_string(r.jobs) + "×" + std::to_string(r.frames_per_job) + " | " +
           std::to_string(r.frames_done) + " | " + std::to_string(r.frames_lost) + " | " +
           std::to_string(r.failed_by_oom) + " | " + std::to_string(r.oom_events) + " | " +
           std::to_string(r.retries) + " | " + std::to_string(r.cpu_fallbacks) + " | " +
           fixed(r.injected_oom_rate, 2) + " | " + fixed(r.throughput_fps, 1) + " | " +
           fixed(r.p50_ms, 0) + " | " + fixed(r.p95_ms, 0) + " | " + fixed(r.p99_ms, 0) + " | " +
           fixed(gib(r.peak_reserved_bytes), 2) + " | " +
           (r.fraction_of_ceiling ? fixed(*r.fraction_of_ceiling, 2) : "–") + " |\n";
  }
  // Per cap: the best fixed concurrency, and the adaptive gate against it.
  std::set<double> caps;
  for (const BenchRunReport& r : runs) caps.insert(r.cap_gib);
  std::string summary;
  for (const double cap : caps) {
    const BenchRunReport* best_fixed = nullptr;
    const BenchRunReport* adaptive = nullptr;
    for (const BenchRunReport& r : runs) {
      if (r.cap_gib != cap) continue;
      if (r.gate.rfind("fixed:", 0) == 0 && r.frames_lost == 0 &&
          (best_fixed == nullptr || r.throughput_fps > best_fixed->throughput_fps)) {
        best_fixed = &r;
      }
      if (r.gate == "adaptive" && r.injected_oom_rate == 0) adaptive = &r;
    }
    if (best_fixed == nullptr) continue;
    summary += "- cap " + (cap > 0 ? fixed(cap, 0) + " GiB" : std::string("none")) +
               ": best fixed concurrency without losses " + best_fixed->gate + " at " +
               fixed(best_fixed->throughput_fps, 1) + " frames/s";
    if (adaptive != nullptr && best_fixed->throughput_fps > 0) {
      summary += "; adaptive " + fixed(adaptive->throughput_fps, 1) + " frames/s = " +
                 fixed(100.0 * adaptive->throughput_fps / best_fixed->throughput_fps, 1) +
                 " % of it (target ≥ 95 %)";
    }
    summary += "\n";
  }
  if (!summary.empty()) out += "\n" + summary;
  const std::string stages = stages_to_markdown(runs);
  if (!stages.empty()) out += "\n" + stages;
  std::string batches;
  for (const BenchRunReport& r : runs) {
    if (r.mean_batch.empty()) continue;
    batches += "- " + r.gate + ":";
    for (const auto& [model, mean] : r.mean_batch) batches += " " + model + " " + fixed(mean, 2);
    batches += "\n";
  }
  if (!batches.empty()) out += "\nMean batch (tasks per forward pass), by run:\n\n" + batches;
  return out;
}

std::string stages_to_markdown(const std::vector<BenchRunReport>& runs) {
  std::string rows;
  for (const BenchRunReport& r : runs) {
    if (!r.stage_seconds_per_frame) continue;
    const StageTimes& t = *r.stage_seconds_per_frame;
    rows += "| " + (r.cap_gib > 0 ? fixed(r.cap_gib, 0) : std::string("card")) + " | " + r.gate +
            (r.injected_oom_rate > 0 ? " inj. " + fixed(r.injected_oom_rate, 2) : "") + " | " +
            fixed(r.throughput_fps, 1);
    for (std::size_t i = 0; i < kStageCount; ++i) {
      rows += " | " + fixed(1000.0 * t[static_cast<Stage>(i)], 1);
    }
    rows += " |\n";
  }
  if (rows.empty()) return "";
  std::string header =
      "Where the time goes (mean ms per frame; upload, model and post-processing "
      "summed over the models):\n\n| cap GiB | gate | fps";
  std::string rule = "|---|---|---";
  for (std::size_t i = 0; i < kStageCount; ++i) {
    header += " | " + std::string(to_string(static_cast<Stage>(i)));
    rule += "|---";
  }
  return header + " |\n" + rule + "|\n" + rows;
}

std::string slug(const std::string& text) {
  std::string out;
  bool dash = false;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '.') {
      if (dash && !out.empty()) out += '-';
      dash = false;
      out += static_cast<char>(std::tolower(u));
    } else {
      dash = true;
    }
  }
  return out;
}

std::string result_stem(const BenchRunReport& report) {
  std::string date;
  for (const char c : report.date) {
    if (c != ':' && c != '-') date += c;
  }
  std::string gate = report.gate;
  std::replace(gate.begin(), gate.end(), ':', '-');
  std::string stem = date + "_" + slug(report.card) + "_cap" +
                     (report.cap_gib > 0 ? fixed(report.cap_gib, 0) : std::string("none")) + "_" +
                     gate;
  if (report.injected_oom_rate > 0) stem += "_inject" + fixed(report.injected_oom_rate, 2);
  return stem;
}

std::string utc_now_iso8601() {
  return utc_iso8601(std::chrono::system_clock::now(), IsoPrecision::kSeconds);
}

}  // namespace segmentor
