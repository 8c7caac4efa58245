#include "runtime/lane_cache.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>

#include "models/manifest.h"
#include "models/model_loader.h"
#include "runtime/device_lane.h"

namespace segmentor {

namespace {

// Note [Calibration on disk]: what a lane's calibration and load checks depend on.
Result<CalibrationKey> make_key(const Config& config, const std::string& device,
                                const std::vector<std::filesystem::path>& model_files) {
  CalibrationKey key;
  if (device != "cpu") {
    const auto colon = device.find(':');
    key.card =
        nvidia_card_name(colon == std::string::npos ? 0 : std::stoi(device.substr(colon + 1)));
    key.driver = nvidia_driver_version();
  }
  key.libtorch = libtorch_version();
  key.device = device;
  for (const std::filesystem::path& file : model_files) {
    SEGMENTOR_ASSIGN_OR_RETURN(key.models[file.stem().string()], file_fingerprint(file));
  }
  // Bump when calibration measures differently or the stored fields change (4: batch limits and
  // load checks are kept, files before it lost the batch limits; 6: a batch must pay for itself;
  // 7: the TorchScript fuser is off unless PYTORCH_TENSOREXPR turns it on; 8: speedup 1.5×;
  // 9: no optimize_for_inference on CUDA, and the CPU's check runs the optimised graph;
  // 10: which unbatched models run their passes on a thread of their own, and a batch's tasks
  // may use the smallest task's bytes).
  key.settings["calibration"] = "10";
  // The batch cap calibration measures up to (model_options in device_lane.cpp), and the slots
  // one thread of a model's own would have to keep up with (Note [Dear first calls on a new
  // thread]).
  key.settings["max_model_batch"] = std::to_string(gpu_batch_cap(config));
  key.settings["max_concurrent_images"] = std::to_string(config.max_concurrent_images);
  key.settings["fp16"] = config.use_fp16 ? "true" : "false";
  key.settings["cuda_streams"] = config.cuda_streams;
  // LibTorch's own variables, read as LibTorch reads them: the first changes how the allocator
  // reserves, the second whether the fuser compiles kernels (their workspaces, and the graphs
  // the freeze check compares).
  for (const char* name : {"PYTORCH_CUDA_ALLOC_CONF", "PYTORCH_TENSOREXPR"}) {
    const char* value = std::getenv(name);
    key.settings[name] = value != nullptr ? value : "";
  }
  return key;
}

}  // namespace

LaneCache LaneCache::open(const Config& config, const std::string& device,
                          const std::vector<std::filesystem::path>& model_files) {
  LaneCache entry;
  if (config.calibration_cache == "none") return entry;
  auto key = make_key(config, device, model_files);
  if (!key.ok()) {
    spdlog::warn("calibration cache off for {}: {}", device, key.status().to_string());
    return entry;
  }
  entry.key_ = std::move(*key);
  entry.cache_.emplace(config.calibration_cache.empty()
                           ? config.model_cache / "calibration"
                           : std::filesystem::path(config.calibration_cache));
  std::string why_not;
  if (auto found = entry.cache_->load(entry.key_, &why_not)) {
    entry.hit_ = true;
    entry.found_ = std::move(*found);
  } else if (!why_not.empty()) {
    spdlog::info("calibration cache: {}; measuring and checking again", why_not);
  }
  return entry;
}

std::string LaneCache::path() const {
  return cache_ ? cache_->path_for(key_).string() : std::string();
}

void LaneCache::store(const CachedMeasurements& measured) const {
  if (!cache_) return;
  const bool same_calibration =
      measured.calibration.rows() == found_.calibration.rows() &&
      measured.calibration.batch_limits() == found_.calibration.batch_limits() &&
      measured.calibration.own_thread() == found_.calibration.own_thread() &&
      measured.calibration.padded() == found_.calibration.padded();
  if (hit_ && same_calibration && measured.load_checks == found_.load_checks) return;
  const Status stored = cache_->store(key_, measured);
  if (!stored.ok()) spdlog::warn("calibration not cached: {}", stored.to_string());
}

std::vector<std::filesystem::path> LaneModelFiles::all() const {
  std::vector<std::filesystem::path> files;
  for (const std::filesystem::path& file : {foreground, people, detector}) {
    if (!file.empty()) files.push_back(file);
  }
  return files;
}

Result<LaneModelFiles> lane_model_files(const Config& config) {
  LaneModelFiles files;
  SEGMENTOR_ASSIGN_OR_RETURN(files.foreground,
                             resolve_model(config.foreground_model, config.model_cache));
  if (config.people_model == "none") return files;
  SEGMENTOR_ASSIGN_OR_RETURN(files.people, resolve_model(config.people_model, config.model_cache));
  SEGMENTOR_ASSIGN_OR_RETURN(const ModelManifest manifest,
                             read_manifest(manifest_path_for(files.people)));
  if (config.people_detector_model == "none" || manifest.kind == ModelKind::kYoloSeg) return files;
  SEGMENTOR_ASSIGN_OR_RETURN(files.detector,
                             resolve_model(config.people_detector_model, config.model_cache));
  return files;
}

}  // namespace segmentor
