#include "memory/calibration.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>

#include <nlohmann/json.hpp>

#include "memory/device_memory.h"

namespace segmentor {

namespace {

constexpr std::int64_t kProductPixels = 400 * 400;
constexpr std::int64_t kHdPixels = 1280 * 720;
constexpr std::int64_t kFhdPixels = 1920 * 1080;

std::int64_t pixels_of(int width, int height) {
  return static_cast<std::int64_t>(width) * static_cast<std::int64_t>(height);
}

Result<SizeClass> size_class_from_string(std::string_view name) {
  for (SizeClass c : {SizeClass::kProduct, SizeClass::kHd, SizeClass::kFhd, SizeClass::kLarger}) {
    if (to_string(c) == name) return c;
  }
  return invalid_argument("calibration: unknown size class '" + std::string(name) + "'");
}

}  // namespace

std::string_view to_string(SizeClass size_class) {
  switch (size_class) {
    case SizeClass::kProduct: return "product";
    case SizeClass::kHd: return "hd";
    case SizeClass::kFhd: return "fhd";
    case SizeClass::kLarger: return "larger";
  }
  return "unknown";
}

SizeClass size_class_of(int width, int height) {
  const std::int64_t pixels = pixels_of(width, height);
  if (pixels <= kProductPixels) return SizeClass::kProduct;
  if (pixels <= kHdPixels) return SizeClass::kHd;
  if (pixels <= kFhdPixels) return SizeClass::kFhd;
  return SizeClass::kLarger;
}

std::vector<ReferenceSize> reference_sizes() {
  return {{SizeClass::kProduct, 400, 400},
          {SizeClass::kHd, 1280, 720},
          {SizeClass::kFhd, 1920, 1080},
          {SizeClass::kLarger, 3840, 2160}};
}

void CalibrationTable::set_resident_bytes(const std::string& model, std::int64_t bytes) {
  resident_[model] = std::max<std::int64_t>(0, bytes);
}

void CalibrationTable::add_measurement(const std::string& model, int width, int height,
                                       std::int64_t peak_bytes) {
  CalibrationRow row{model, size_class_of(width, height), width, height,
                     std::max<std::int64_t>(0, peak_bytes)};
  rows_[model][pixels_of(width, height)] = std::move(row);
}

std::int64_t CalibrationTable::resident_bytes() const {
  std::int64_t total = 0;
  for (const auto& [model, bytes] : resident_) total += bytes;
  return total;
}

std::int64_t CalibrationTable::resident_bytes(const std::string& model) const {
  auto it = resident_.find(model);
  return it == resident_.end() ? 0 : it->second;
}

Result<std::int64_t> CalibrationTable::predict_model_bytes(const std::string& model, int width,
                                                           int height) const {
  if (width <= 0 || height <= 0) {
    return invalid_argument("calibration: bad source size " + std::to_string(width) + "x" +
                            std::to_string(height));
  }
  auto it = rows_.find(model);
  if (it == rows_.end() || it->second.empty()) {
    return not_found("calibration: no measurements for model '" + model + "'");
  }
  const std::int64_t pixels = pixels_of(width, height);
  std::int64_t envelope = 0;  // the largest peak at this size or below (Note [Size classes])
  for (const auto& [row_pixels, row] : it->second) {
    envelope = std::max(envelope, row.peak_bytes);
    if (row_pixels >= pixels) return envelope;
  }
  // Bigger than anything measured: scale the largest by pixel count, rounding up.
  const std::int64_t largest_pixels = it->second.rbegin()->first;
  const long double scaled = static_cast<long double>(envelope) *
                             static_cast<long double>(pixels) /
                             static_cast<long double>(std::max<std::int64_t>(1, largest_pixels));
  if (scaled >= static_cast<long double>(std::numeric_limits<std::int64_t>::max())) {
    return too_large("calibration: prediction for " + std::to_string(width) + "x" +
                     std::to_string(height) + " overflows");
  }
  return static_cast<std::int64_t>(std::ceil(scaled));
}

Result<std::int64_t> CalibrationTable::predict_task_bytes(int width, int height,
                                                          TaskCombine combine) const {
  if (rows_.empty()) return not_found("calibration: the table is empty");
  std::int64_t total = 0;
  for (const auto& [model, model_rows] : rows_) {
    SEGMENTOR_ASSIGN_OR_RETURN(const std::int64_t bytes,
                               predict_model_bytes(model, width, height));
    total = combine == TaskCombine::kSum ? total + bytes : std::max(total, bytes);
  }
  return total;
}

Result<int> CalibrationTable::safe_concurrency(std::int64_t card_bytes, double threshold,
                                               int width, int height, TaskCombine combine) const {
  if (card_bytes <= 0 || !(threshold > 0.0 && threshold <= 1.0)) {
    return invalid_argument("calibration: card bytes must be > 0 and threshold in (0, 1]");
  }
  SEGMENTOR_ASSIGN_OR_RETURN(const std::int64_t task, predict_task_bytes(width, height, combine));
  const auto usable = static_cast<std::int64_t>(static_cast<double>(card_bytes) * threshold);
  const std::int64_t room = usable - resident_bytes();
  if (room <= 0) return 0;
  const std::int64_t tasks = room / std::max<std::int64_t>(1, task);
  return static_cast<int>(std::min<std::int64_t>(tasks, std::numeric_limits<int>::max()));
}

void CalibrationTable::set_batch_limit(const std::string& model, int max_batch) {
  batch_limits_[model] = std::max(1, max_batch);
}

CalibrationTable CalibrationTable::without_resident_bytes() const {
  CalibrationTable kept = *this;
  kept.resident_.clear();
  return kept;
}

void CalibrationTable::take_all_but_resident_bytes(const CalibrationTable& stored) {
  auto resident = std::move(resident_);
  *this = stored;
  resident_ = std::move(resident);
}

std::vector<CalibrationRow> CalibrationTable::rows() const {
  std::vector<CalibrationRow> out;
  for (const auto& [model, model_rows] : rows_) {
    for (const auto& [pixels, row] : model_rows) out.push_back(row);
  }
  return out;
}

std::string CalibrationTable::describe() const {
  std::string out;
  std::array<char, 256> line{};
  std::snprintf(line.data(), line.size(), "%-24s %-8s %-11s %12s %12s\n", "model", "class",
                "size", "peak", "resident");
  out += line.data();
  for (const CalibrationRow& row : rows()) {
    const std::string size = std::to_string(row.width) + "x" + std::to_string(row.height);
    std::snprintf(line.data(), line.size(), "%-24s %-8s %-11s %12s %12s\n", row.model.c_str(),
                  std::string(to_string(row.size_class)).c_str(), size.c_str(),
                  format_bytes(row.peak_bytes).c_str(),
                  format_bytes(resident_bytes(row.model)).c_str());
    out += line.data();
  }
  out += "resident total: " + format_bytes(resident_bytes()) + "\n";
  for (const auto& [model, limit] : batch_limits_) {
    out += "batches of " + model + ": up to " + std::to_string(limit) + "\n";
  }
  for (const std::string& model : own_thread_) {
    out += "passes of " + model + ": on a thread of its own\n";
  }
  for (const std::string& model : padded_) {
    out += "batches of " + model + ": padded to the limit\n";
  }
  return out;
}

std::string CalibrationTable::to_json() const {
  nlohmann::json doc;
  doc["resident"] = nlohmann::json::object();
  for (const auto& [model, bytes] : resident_) doc["resident"][model] = bytes;
  doc["rows"] = nlohmann::json::array();
  for (const CalibrationRow& row : rows()) {
    doc["rows"].push_back({{"model", row.model},
                           {"size_class", std::string(to_string(row.size_class))},
                           {"width", row.width},
                           {"height", row.height},
                           {"peak_bytes", row.peak_bytes}});
  }
  if (!batch_limits_.empty()) {
    doc["batch_limits"] = nlohmann::json::object();
    for (const auto& [model, limit] : batch_limits_) doc["batch_limits"][model] = limit;
  }
  if (!own_thread_.empty()) doc["own_thread"] = own_thread_;
  if (!padded_.empty()) doc["padded"] = padded_;
  return doc.dump(2);
}

Result<CalibrationTable> CalibrationTable::from_json(std::string_view text) {
  // nlohmann throws on malformed input; this is the adapter that turns that into a Status.
  try {
    const nlohmann::json doc = nlohmann::json::parse(text);
    CalibrationTable table;
    if (doc.contains("resident")) {
      for (const auto& [model, bytes] : doc.at("resident").items()) {
        table.set_resident_bytes(model, bytes.get<std::int64_t>());
      }
    }
    if (doc.contains("rows")) {
      for (const auto& row : doc.at("rows")) {
        const int width = row.at("width").get<int>();
        const int height = row.at("height").get<int>();
        if (width <= 0 || height <= 0) return corrupt_data("calibration: row with a bad size");
        if (row.contains("size_class")) {  // checked, but always re-derived from the size
          SEGMENTOR_RETURN_IF_ERROR(
              size_class_from_string(row.at("size_class").get<std::string>()).status());
        }
        table.add_measurement(row.at("model").get<std::string>(), width, height,
                              row.at("peak_bytes").get<std::int64_t>());
      }
    }
    if (doc.contains("batch_limits")) {
      for (const auto& [model, limit] : doc.at("batch_limits").items()) {
        if (limit.get<int>() < 1) return corrupt_data("calibration: a batch limit below 1");
        table.set_batch_limit(model, limit.get<int>());
      }
    }
    if (doc.contains("own_thread")) {
      for (const auto& model : doc.at("own_thread")) table.set_own_thread(model.get<std::string>());
    }
    if (doc.contains("padded")) {
      for (const auto& model : doc.at("padded")) table.set_padded(model.get<std::string>());
    }
    return table;
  } catch (const nlohmann::json::exception& e) {
    return corrupt_data(std::string("calibration JSON: ") + e.what());
  }
}

}  // namespace segmentor
