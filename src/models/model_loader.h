// Finding, loading and configuring TorchScript models. The header is torch-free: callers get a
// MaskModel and never see LibTorch; the implementation (segmentor_models) links it.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "models/mask_model.h"

namespace segmentor {

struct ModelOptions {
  std::string device = "auto";        // auto | cpu | cuda | cuda:N (see resolve_device)
  bool use_fp16 = true;               // run in half precision on CUDA; ignored on CPU
  int cpu_threads = 0;                // intra-op threads (configure_torch_threads); 0 = every core
  double inject_oom_rate = 0.0;       // test-only: probability that segment() fails with an OOM
  std::string cuda_streams = "pool";  // pool | worker | default: see Note [One stream per call]
  // Freeze the TorchScript module (torch::jit::freeze) when that gives the same output on a probe
  // input; see Note [Freezing TorchScript modules] in torch_mask_model.cpp.
  bool freeze = true;
  // The most inputs one forward pass takes (MAX_MODEL_BATCH; Note [Batching admitted tasks] in
  // forward_batcher.h). 1 = every call runs its own pass, as without batching. A model batches
  // only when its manifest allows it and batch 2 gives what two batch-1 passes give.
  int max_batch = 1;
  // Verdicts of earlier load-time checks, by model name (the manifest's), from the cache on disk
  // (Note [Load checks on disk], memory/calibration_cache.h). A model found here is frozen,
  // optimised and batched as they say, without the probe forward passes; others are checked.
  std::map<std::string, LoadChecks> known_checks;
  // person_detector models: the score a person box needs (PERSON_MIN_SCORE); unset = the
  // manifest's conf_threshold.
  std::optional<double> person_min_score;
};

// Where a model named by FOREGROUND_SEG_MODEL_NAME / PEOPLE_SEG_MODEL_NAME lives. A name ending in
// ".pt" is a path used as is; anything else is a bare name, <model_cache>/<name>.pt. The .pt and
// its manifest (same path, .json) must both exist, or kNotFound says where it looked and how to
// get the model.
Result<std::filesystem::path> resolve_model(const std::string& name_or_path,
                                            const std::filesystem::path& model_cache);

// Loads <model_file> and its manifest (<model_file> with .json) onto the options' device.
// Errors: kNotFound (missing file), kCorruptData (bad manifest, or a .pt LibTorch cannot load),
// kInvalidArgument (bad device), kOutOfMemory (no room for the weights), kInternal (the rest).
// The returned model is thread-compatible: one caller at a time.
Result<std::unique_ptr<MaskModel>> load_mask_model(const std::filesystem::path& model_file,
                                                   const ModelOptions& options);

// Sets LibTorch's intra-op thread count (process-wide). 0 = std::thread::hardware_concurrency():
// Debian's LibTorch otherwise runs on one thread. Also applies configure_torchscript().
void configure_torch_threads(int cpu_threads);

// Turns LibTorch's TensorExpr fuser off, once per process, unless PYTORCH_TENSOREXPR says
// otherwise (Note [The TorchScript fuser is off], model_loader.cpp).
void configure_torchscript();

// The LibTorch this binary was built against, "2.11.0" (TORCH_VERSION). For calibration keys.
std::string libtorch_version();

// "auto" -> "cuda:0" when CUDA is usable, else "cpu". "cpu" stays; "cuda" -> "cuda:0"; "cuda:N"
// is checked against the device count. Asking for CUDA where there is none is kInvalidArgument.
Result<std::string> resolve_device(const std::string& requested);

// The devices the runtime makes a lane for: "auto" and "cuda" -> every visible GPU ("cuda:0",
// "cuda:1", ...; CUDA_VISIBLE_DEVICES chooses which are visible), "auto" without CUDA -> "cpu";
// "cpu" and "cuda:N" -> that one device. Errors as resolve_device.
Result<std::vector<std::string>> resolve_lane_devices(const std::string& requested);

// The hint every "model missing / unloadable" message carries.
inline constexpr const char* kModelFetchHint =
    "run scripts/fetch-models.sh (bundled models) or tools/export_upstream.py (RMBG-2.0, "
    "YOLO11-seg)";

}  // namespace segmentor
