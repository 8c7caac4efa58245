// The models' throughput ceiling: frames per second of the TorchScript networks alone, with their
// inputs already on the device, at several batch sizes. `segmentor bench --ceiling` compares the
// whole pipeline against it. The header is torch-free; the implementation links LibTorch.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace segmentor {

struct CeilingOptions {
  std::string device = "auto";  // auto | cpu | cuda | cuda:N
  bool use_fp16 = true;         // half precision on CUDA, as the pipeline runs
  std::vector<int> batch_sizes = {1, 2, 4, 8, 16};
  double seconds_per_point = 2.0;  // timed forwards per batch size run at least this long
  int warmup_iterations = 3;       // untimed forwards first (cuDNN autotuning, lazy init)
  int max_iterations = 1000;       // ... and at most this many timed ones
};

// One batch size. A batch that runs out of memory, or a traced graph that only takes batch 1,
// is recorded (out_of_memory / error) rather than failing the whole measurement.
struct CeilingPoint {
  int batch = 0;
  int iterations = 0;
  double ms_per_batch = 0;
  double frames_per_second = 0;  // batch × iterations / time; 0 when it did not run
  bool out_of_memory = false;
  std::string error;
};

struct ModelCeiling {
  std::string model;  // manifest name
  std::string device;
  bool fp16 = false;
  int input_width = 0;
  int input_height = 0;
  std::vector<CeilingPoint> points;
  int best_batch = 0;  // 0 when no batch size ran
  double best_frames_per_second = 0;
};

// Loads `model_file` (+ its manifest) and times forward passes on random inputs of the manifest's
// input shape. Errors: what load_mask_model would say for a missing or broken model, or
// kInternal/kOutOfMemory when not even batch 1 runs. Blocks for about
// batch_sizes.size() × seconds_per_point. Not thread-safe with other GPU work (it would time it).
Result<ModelCeiling> measure_model_ceiling(const std::filesystem::path& model_file,
                                           const CeilingOptions& options);

// Frames per second of a pipeline that runs every model once per frame, one after the other,
// each at its best batch size: 1 / Σ (1 / best fps). 0 when any model has no measurement.
double combined_ceiling_fps(const std::vector<ModelCeiling>& models);

}  // namespace segmentor
