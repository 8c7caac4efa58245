// A lane's entry in the calibration cache: its key, made from the model files before they load,
// and what is stored for it — the calibration and the models' load-time checks (Note
// [Calibration on disk] and Note [Load checks on disk], memory/calibration_cache.h).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "memory/calibration_cache.h"

namespace segmentor {

class LaneCache {
 public:
  // The entry for `device` with these model files (all the lane may load). Off, with nothing
  // found, when CALIBRATION_CACHE=none or a file cannot be fingerprinted (logged).
  static LaneCache open(const Config& config, const std::string& device,
                        const std::vector<std::filesystem::path>& model_files);

  // What an earlier start stored for the same key; empty on a miss.
  const std::map<std::string, LoadChecks>& load_checks() const { return found_.load_checks; }
  // The stored calibration, or null on a miss or where none was measured.
  const CalibrationTable* calibration() const {
    return hit_ && !found_.calibration.empty() ? &found_.calibration : nullptr;
  }
  // Where the entry lives ("" when off).
  std::string path() const;

  // Stores `measured` unless the cache is off or it holds exactly that already; a folder that
  // cannot be written is a warning (model caches are often read-only mounts).
  void store(const CachedMeasurements& measured) const;

 private:
  std::optional<CalibrationCache> cache_;
  CalibrationKey key_;
  bool hit_ = false;
  CachedMeasurements found_;
};

// The model files a lane of `config` loads, decided once for loading and for the cache key.
struct LaneModelFiles {
  std::filesystem::path foreground;
  std::filesystem::path people;  // empty: PEOPLE_SEG_MODEL_NAME=none
  // Empty: PEOPLE_DETECTOR_MODEL_NAME=none, or a YOLO-seg people model, which finds people itself
  // (Note [People are decided by a detector], pipeline/segmenter.h).
  std::filesystem::path detector;
  // The files that are set, in pipeline order.
  std::vector<std::filesystem::path> all() const;
};

// Resolves `config`'s model names (the people model's manifest says whether a detector is
// needed). Errors as resolve_model and read_manifest.
Result<LaneModelFiles> lane_model_files(const Config& config);

}  // namespace segmentor
