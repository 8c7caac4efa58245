// CalibrationTable: measured GPU bytes per model and source size, and the task-size prediction
// the admission gate admits by. The measuring (warm-ups on the device) lives with the models; this
// is the torch-free table.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace segmentor {

// Note [Size classes]
// ~~~~~~~~~~~~~~~~~~~
// Model inputs have fixed shapes (resized on the GPU), so what grows with the source is only the
// uploaded image, the resize, and the full-size masks. A handful of measured source sizes covers
// what the pipeline sees; a task is predicted by the smallest measured size whose pixel count
// covers it, taking the largest peak among that size and every smaller one (so noise in one
// measurement never predicts less for a bigger image). Beyond the largest measured size the peak
// scales linearly with pixel count, which overestimates (the fixed-shape part does not grow):
// conservative on purpose.

enum class SizeClass { kProduct = 0, kHd, kFhd, kLarger };
std::string_view to_string(SizeClass size_class);
// The class a source size falls in: ≤ 400×400 pixels, ≤ 1280×720, ≤ 1920×1080, or larger.
SizeClass size_class_of(int width, int height);

// The reference sizes calibration warms up at (product, HD, FHD, 4K UHD).
struct ReferenceSize {
  SizeClass size_class;
  int width;
  int height;
};
std::vector<ReferenceSize> reference_sizes();

// One measurement: JSON-able as {"model", "size_class", "width", "height", "peak_bytes"}.
struct CalibrationRow {
  std::string model;
  SizeClass size_class = SizeClass::kProduct;
  int width = 0;
  int height = 0;
  std::int64_t peak_bytes = 0;  // one task's bytes above the weights (pipeline/calibrate.h)
  bool operator==(const CalibrationRow& other) const = default;
};

// How the per-model peaks of one task combine.
enum class TaskCombine {
  kSum,  // models' peaks add up: safe when a task keeps each model's buffers (the default)
  kMax,  // models run one after another and reuse the cache: the task needs the biggest one
};

// Thread-compatible: built at start-up (or loaded from JSON), then only read.
class CalibrationTable {
 public:
  void set_resident_bytes(const std::string& model, std::int64_t bytes);
  // Adds or replaces the measurement of `model` at width×height.
  void add_measurement(const std::string& model, int width, int height, std::int64_t peak_bytes);

  std::int64_t resident_bytes() const;  // all models' weights
  std::int64_t resident_bytes(const std::string& model) const;
  bool empty() const { return rows_.empty(); }

  // One model's predicted peak for a width×height source (Note [Size classes]).
  Result<std::int64_t> predict_model_bytes(const std::string& model, int width, int height) const;
  // A task's predicted bytes: every measured model's prediction, combined.
  Result<std::int64_t> predict_task_bytes(int width, int height,
                                          TaskCombine combine = TaskCombine::kSum) const;

  // Tasks of width×height that fit a card of `card_bytes` at `threshold` next to the weights;
  // 0 when even the weights do not fit. For `segmentor plan`.
  Result<int> safe_concurrency(std::int64_t card_bytes, double threshold, int width, int height,
                               TaskCombine combine = TaskCombine::kSum) const;

  // The largest batch each batched model may run within the bytes the gate reserves for its
  // tasks (Note [Batch sizes within the reserved bytes], pipeline/calibrate.h). Models absent
  // here run as their load allowed.
  void set_batch_limit(const std::string& model, int max_batch);
  const std::map<std::string, int>& batch_limits() const { return batch_limits_; }
  // The models whose forward passes run on a thread of their own even at batch 1, since each new
  // thread's first call is dear (Note [Dear first calls on a new thread], pipeline/calibrate.h).
  void set_own_thread(const std::string& model) { own_thread_.insert(model); }
  const std::set<std::string>& own_thread() const { return own_thread_; }
  // The batched models that run every batch padded to their limit (Note [Flat batches run
  // padded], pipeline/calibrate.h).
  void set_padded(const std::string& model) { padded_.insert(model); }
  const std::set<std::string>& padded() const { return padded_; }

  // Everything but the resident bytes, which every load measures again (Note [Calibration on
  // disk]): what a calibration cache keeps.
  CalibrationTable without_resident_bytes() const;
  // Its counterpart on a restart: everything from `stored` (what a cache kept), keeping this
  // table's resident bytes, which this load measured.
  void take_all_but_resident_bytes(const CalibrationTable& stored);

  std::vector<CalibrationRow> rows() const;
  std::string describe() const;  // an aligned text table for logs

  // {"resident": {"model": bytes, ...}, "rows": [CalibrationRow, ...],
  //  "batch_limits": {"model": n, ...}, "own_thread": ["model", ...], "padded": ["model", ...]}
  std::string to_json() const;
  static Result<CalibrationTable> from_json(std::string_view text);

 private:
  std::map<std::string, std::int64_t> resident_;
  // model -> pixel count -> row, so a model's rows are ordered by size.
  std::map<std::string, std::map<std::int64_t, CalibrationRow>> rows_;
  std::map<std::string, int> batch_limits_;
  std::set<std::string> own_thread_;
  std::set<std::string> padded_;
};

}  // namespace segmentor
