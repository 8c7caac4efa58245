#include "models/model_loader.h"

#include <ATen/Parallel.h>
#include <torch/csrc/jit/passes/tensorexpr_fuser.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <algorithm>
#include <charconv>
#include <mutex>
#include <thread>

#include "models/manifest.h"
#include "models/torch_mask_model.h"

namespace segmentor {

namespace {

bool ends_with(const std::string& text, std::string_view suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Result<std::filesystem::path> resolve_model(const std::string& name_or_path,
                                            const std::filesystem::path& model_cache) {
  if (name_or_path.empty()) return invalid_argument("model name is empty");
  const bool is_path = ends_with(name_or_path, ".pt");
  const std::filesystem::path model_file =
      is_path ? std::filesystem::path(name_or_path) : model_cache / (name_or_path + ".pt");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(model_file, ec)) {
    std::string where = is_path ? "looked for " + model_file.string()
                                : "looked for " + model_file.string() +
                                      " (MODEL_CACHE=" + model_cache.string() + ")";
    return not_found("model \"" + name_or_path + "\" not found: " + where + "; " + kModelFetchHint);
  }
  const std::filesystem::path manifest = manifest_path_for(model_file);
  if (!std::filesystem::is_regular_file(manifest, ec)) {
    return not_found("model \"" + name_or_path + "\": " + model_file.string() +
                     " has no manifest " + manifest.string() + "; " + kModelFetchHint);
  }
  return model_file;
}

std::string libtorch_version() { return TORCH_VERSION; }

// Note [The TorchScript fuser is off]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// LibTorch's TensorExpr fuser compiles fused kernels at a graph's first calls, for the shapes it
// has seen. On an H200 (2026-11-30, cap 8 GiB) it bought the bundled models nothing in steady
// state (234.8 frames/s with it, 233.6 without, 16 concurrent, batched), while their first start
// took 18.6 s with it and 11.7 s without, and their first 60 frames after a start ran at 102
// against 126 frames/s. The unbatched stand-ins ran as fast without it (60.2–60.4 frames/s
// against 59.6–60.4). So the fuser is off unless PYTORCH_TENSOREXPR (LibTorch's own variable, which
// wins over this default) turns it on. (A 14–17 % loss of the stand-ins first blamed on it came
// with loading from the cache instead: Note [Load checks on disk].)
void configure_torchscript() {
  static std::once_flag once;
  std::call_once(once, [] { torch::jit::setTensorExprFuserEnabled(false); });
}

void configure_torch_threads(int cpu_threads) {
  configure_torchscript();
  int threads = cpu_threads;
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  at::set_num_threads(std::max(1, threads));
}

Result<std::string> resolve_device(const std::string& requested) {
  const bool cuda = torch::cuda::is_available();
  if (requested == "auto") return std::string(cuda ? "cuda:0" : "cpu");
  if (requested == "cpu") return requested;
  if (requested == "cuda" || requested.rfind("cuda:", 0) == 0) {
    if (!cuda) {
      return invalid_argument("device \"" + requested +
                              "\" requested but CUDA is not available (no GPU, or a CPU-only "
                              "LibTorch); use DEVICE=cpu or auto");
    }
    if (requested == "cuda") return std::string("cuda:0");
    const std::string digits = requested.substr(5);
    int index = -1;
    const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), index);
    if (error != std::errc() || end != digits.data() + digits.size() || digits.empty()) {
      return invalid_argument("device \"" + requested + "\": expected cuda:N");
    }
    const auto count = static_cast<int>(torch::cuda::device_count());
    if (index < 0 || index >= count) {
      return invalid_argument("device \"" + requested + "\": this machine has " +
                              std::to_string(count) + " CUDA device(s)");
    }
    return requested;
  }
  return invalid_argument("unknown device \"" + requested +
                          "\": expected auto, cpu, cuda or "
                          "cuda:N");
}

Result<std::vector<std::string>> resolve_lane_devices(const std::string& requested) {
  SEGMENTOR_ASSIGN_OR_RETURN(std::string first, resolve_device(requested));
  if ((requested != "auto" && requested != "cuda") || first == "cpu") return std::vector{first};
  std::vector<std::string> devices;
  const auto count = static_cast<int>(torch::cuda::device_count());
  for (int index = 0; index < count; ++index) devices.push_back("cuda:" + std::to_string(index));
  return devices;
}

Result<std::unique_ptr<MaskModel>> load_mask_model(const std::filesystem::path& model_file,
                                                   const ModelOptions& options) {
  if (!(options.inject_oom_rate >= 0.0 && options.inject_oom_rate <= 1.0)) {
    return invalid_argument("inject_oom_rate must be in [0, 1]");
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(model_file, ec)) {
    return not_found("model file " + model_file.string() + " not found; " + kModelFetchHint);
  }
  SEGMENTOR_ASSIGN_OR_RETURN(ModelManifest manifest, read_manifest(manifest_path_for(model_file)));
  SEGMENTOR_ASSIGN_OR_RETURN(std::string device, resolve_device(options.device));
  configure_torch_threads(options.cpu_threads);
  SEGMENTOR_ASSIGN_OR_RETURN(
      std::unique_ptr<TorchMaskModel> model,
      TorchMaskModel::create(model_file, std::move(manifest), device, options));
  return std::unique_ptr<MaskModel>(std::move(model));
}

}  // namespace segmentor
