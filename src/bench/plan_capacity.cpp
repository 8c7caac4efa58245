#include "bench/plan_capacity.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "memory/device_memory.h"

namespace segmentor {

namespace {

constexpr int kHdWidth = 1280, kHdHeight = 720;
constexpr int kFhdWidth = 1920, kFhdHeight = 1080;
constexpr std::int64_t kGiB = 1024LL * 1024 * 1024;

std::string cell_int(const std::optional<int>& value) {
  return value ? std::to_string(*value) : std::string("n/a");
}

std::string cell_fps(const std::optional<double>& value) {
  if (!value) return "n/a";
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.1f", *value);
  return buffer;
}

nlohmann::ordered_json optional_json(const auto& value) {
  return value ? nlohmann::ordered_json(*value) : nlohmann::ordered_json(nullptr);
}

}  // namespace

Result<PlanReport> plan_capacity(const CalibrationTable& table, const PlanOptions& options,
                                 const ThroughputProbe& probe) {
  if (!(options.threshold > 0.0 && options.threshold <= 1.0)) {
    return invalid_argument("plan: threshold must be in (0, 1]");
  }
  PlanReport report;
  report.threshold = options.threshold;
  report.calibrated = !table.empty();
  report.resident_bytes = table.resident_bytes();
  if (report.calibrated) {
    SEGMENTOR_ASSIGN_OR_RETURN(report.task_hd_bytes, table.predict_task_bytes(kHdWidth, kHdHeight));
    SEGMENTOR_ASSIGN_OR_RETURN(report.task_fhd_bytes,
                               table.predict_task_bytes(kFhdWidth, kFhdHeight));
  }
  report.throughput_method =
      !probe ? "none"
      : report.calibrated
          ? "measured on this card at min(safe concurrency, " +
                std::to_string(options.max_measured_concurrency) + ")"
          : "measured on this device at concurrency 1 (no calibration: concurrency unknown)";

  auto measured = [&](int concurrency, bool fhd) -> Result<std::optional<double>> {
    if (!probe) return std::optional<double>();
    if (concurrency <= 0) return std::optional<double>(0.0);
    const int c = std::min(concurrency, std::max(1, options.max_measured_concurrency));
    auto& cache = fhd ? report.measured_fhd_fps : report.measured_hd_fps;
    if (auto it = cache.find(c); it != cache.end()) return std::optional<double>(it->second);
    SEGMENTOR_ASSIGN_OR_RETURN(const double fps, probe(c, fhd));
    cache[c] = fps;
    return std::optional<double>(fps);
  };

  for (const int gib : options.cards_gib) {
    PlanRow row;
    row.card_gib = gib;
    if (report.calibrated) {
      SEGMENTOR_ASSIGN_OR_RETURN(
          row.safe_hd, table.safe_concurrency(gib * kGiB, options.threshold, kHdWidth, kHdHeight));
      SEGMENTOR_ASSIGN_OR_RETURN(row.safe_fhd, table.safe_concurrency(gib * kGiB, options.threshold,
                                                                      kFhdWidth, kFhdHeight));
    }
    SEGMENTOR_ASSIGN_OR_RETURN(row.fps_hd, measured(row.safe_hd.value_or(1), false));
    SEGMENTOR_ASSIGN_OR_RETURN(row.fps_fhd, measured(row.safe_fhd.value_or(1), true));
    report.rows.push_back(row);
  }
  return report;
}

std::string plan_to_markdown(const PlanReport& report) {
  std::string out =
      "| card | safe concurrency HD | safe concurrency FHD | expected HD frames/s | expected FHD "
      "frames/s |\n|---|---|---|---|---|\n";
  for (const PlanRow& row : report.rows) {
    out += "| " + std::to_string(row.card_gib) + " GiB | " + cell_int(row.safe_hd) + " | " +
           cell_int(row.safe_fhd) + " | " + cell_fps(row.fps_hd) + " | " + cell_fps(row.fps_fhd) +
           " |\n";
  }
  return out;
}

std::string plan_to_text(const PlanReport& report) {
  std::string out = "capacity plan from " + report.card + " (" + report.device + ")";
  if (!report.models.empty()) {
    out += ", models";
    for (const auto& model : report.models) out += " " + model;
  }
  out += "\n";
  if (report.calibrated) {
    out += "weights " + format_bytes(report.resident_bytes) + ", per task: HD " +
           format_bytes(report.task_hd_bytes.value_or(0)) + ", FHD " +
           format_bytes(report.task_fhd_bytes.value_or(0));
    char threshold[32];
    std::snprintf(threshold, sizeof(threshold), "%.2f", report.threshold);
    out += ", GPU_MEMORY_THRESHOLD " + std::string(threshold) + "\n";
  } else {
    out +=
        "no calibration on this device (it runs on a GPU at start-up): safe concurrency "
        "cannot be computed here\n";
  }
  out += "throughput: " + report.throughput_method + "\n\n";
  char line[160];
  std::snprintf(line, sizeof(line), "%-8s %10s %10s %12s %12s\n", "card", "safe HD", "safe FHD",
                "HD fps", "FHD fps");
  out += line;
  for (const PlanRow& row : report.rows) {
    std::snprintf(line, sizeof(line), "%-8s %10s %10s %12s %12s\n",
                  (std::to_string(row.card_gib) + " GiB").c_str(), cell_int(row.safe_hd).c_str(),
                  cell_int(row.safe_fhd).c_str(), cell_fps(row.fps_hd).c_str(),
                  cell_fps(row.fps_fhd).c_str());
    out += line;
  }
  return out;
}

std::string plan_to_json(const PlanReport& report) {
  nlohmann::ordered_json j;
  j["card"] = report.card;
  j["device"] = report.device;
  j["date"] = report.date;
  j["models"] = report.models;
  j["threshold"] = report.threshold;
  j["calibrated"] = report.calibrated;
  j["resident_bytes"] = report.resident_bytes;
  j["task_hd_bytes"] = optional_json(report.task_hd_bytes);
  j["task_fhd_bytes"] = optional_json(report.task_fhd_bytes);
  j["throughput_method"] = report.throughput_method;
  auto measured = [](const std::map<int, double>& values) {
    auto out = nlohmann::ordered_json::object();
    for (const auto& [c, fps] : values) out[std::to_string(c)] = fps;
    return out;
  };
  j["measured_hd_fps"] = measured(report.measured_hd_fps);
  j["measured_fhd_fps"] = measured(report.measured_fhd_fps);
  auto rows = nlohmann::ordered_json::array();
  for (const PlanRow& row : report.rows) {
    rows.push_back({{"card_gib", row.card_gib},
                    {"safe_concurrency_hd", optional_json(row.safe_hd)},
                    {"safe_concurrency_fhd", optional_json(row.safe_fhd)},
                    {"expected_hd_fps", optional_json(row.fps_hd)},
                    {"expected_fhd_fps", optional_json(row.fps_fhd)}});
  }
  j["cards"] = std::move(rows);
  return j.dump(2) + "\n";
}

}  // namespace segmentor
