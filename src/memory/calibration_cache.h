// CalibrationCache: calibration tables, and the models' load-time checks, kept on disk, so a
// restart on the same card, driver, LibTorch, models and settings reuses them instead of
// measuring and checking again.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "common/status.h"
#include "memory/calibration.h"
#include "models/mask_model.h"

namespace segmentor {

// Note [Calibration on disk]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// Calibration (pipeline/calibrate.h) runs two tasks at each of four reference sizes before the
// worker takes work; on the H200 that is a good part of the ~15–22 s from start to first mask
// (issue 13). Its result depends only on what shapes the allocator's behaviour: the card, the
// driver, the LibTorch build, the exact model files and the settings that change the models' work
// (fp16, CUDA_STREAMS, PYTORCH_CUDA_ALLOC_CONF, which models). Those make the key. A table is
// stored as one small JSON file per key, named by the key's hash, holding the key in full, so a
// hash collision or a hand-edited file is caught by comparing keys, not trusted.
//
// Note [Load checks on disk]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// A model's load runs probe forward passes: the freeze check (the plain module, the frozen one,
// the optimised one) and the batch check (two single passes and one of batch 2). On a GPU each
// first pass of a graph pays TorchScript's profiling run and cuDNN's first calls, and on the CPU a
// pass at 1024² takes seconds, so these checks were most of the start after calibration was
// cached. Their verdicts (`LoadChecks`, models/mask_model.h) depend on the same things as the
// calibration — the LibTorch build, the exact model file, the device kind and dtype — so they are
// kept in the same file under the same key, and a restart freezes, optimises and batches as they
// say without the passes. A stale verdict cannot do much harm: a freeze that now throws leaves the
// plain module, and a key change (a new LibTorch, a re-exported model, fp16 off) checks again.
// With the bundled models on an H200 a restart's start to first mask went from 10.8 s to
// 2.2–2.5 s. A restart that trusted the verdicts once ran the stand-ins 11 % slower than the
// process that checked: the check had run a graph other than the one its verdict named (Note
// [Freezing TorchScript modules]). A verdict must describe the graph the check actually ran.
// And a load without passes leaves the module's first calls to its first users, which must not
// make them from several threads at once (Note [First calls on one thread], torch_mask_model.cpp).
//
// Any change to a key's part (a new driver, a re-exported model, fp16 turned off) misses the
// cache and re-measures, then overwrites nothing but its own file. Resident weight bytes are not
// cached: they are measured at every load anyway, for free. A file that cannot be read or parsed
// is a miss (logged by the caller), never an error: the worst a bad cache can do is cost one
// calibration. A cache directory that cannot be written is a warning, never fatal, since model
// caches are often read-only mounts.

// What a calibration depends on. Every field is compared; an empty one is still a value.
struct CalibrationKey {
  std::string card;                             // "NVIDIA H200"
  std::string driver;                           // "580.159.04", "" when not known
  std::string libtorch;                         // "2.11.0"
  std::string device;                           // "cuda:0"
  std::map<std::string, std::string> models;    // model name -> content fingerprint
  std::map<std::string, std::string> settings;  // "fp16" -> "true", "cuda_streams" -> ...

  bool operator==(const CalibrationKey& other) const = default;
  // Stable text of every field, for hashing and for logs.
  std::string canonical() const;
};

// A fingerprint of a file's bytes: "fnv1a64:<16 hex digits>:<size>". Reads the whole file
// (about 0.1 s per 100 MB). kNotFound / kIo when it cannot be read.
Result<std::string> file_fingerprint(const std::filesystem::path& path);

// The NVIDIA kernel driver's version from /proc/driver/nvidia/version ("" where there is none).
std::string nvidia_driver_version();
// The model name of the index-th GPU in /proc/driver/nvidia/gpus ("" where there is none).
std::string nvidia_card_name(int index);

// What is kept for one key: the lane's calibration (empty where none was measured: a CPU lane)
// and the load-time checks of its models, by model name.
struct CachedMeasurements {
  CalibrationTable calibration;
  std::map<std::string, LoadChecks> load_checks;
};

// Loads and stores tables under one directory. Thread-compatible; the directory may be shared by
// several workers (writes are atomic renames, so a reader sees a whole file or none).
class CalibrationCache {
 public:
  explicit CalibrationCache(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // What is stored for exactly `key`; nothing when there is none or it does not match.
  // `why_not` (optional) says why a present file was not used.
  std::optional<CachedMeasurements> load(const CalibrationKey& key,
                                         std::string* why_not = nullptr) const;
  // Writes the measurements (the calibration's rows and batch limits, not its resident bytes, and
  // the load checks) for `key`, creating the directory.
  Status store(const CalibrationKey& key, const CachedMeasurements& measured) const;

  // "<dir>/calibration-<16 hex digits of the key's hash>.json"
  std::filesystem::path path_for(const CalibrationKey& key) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace segmentor
