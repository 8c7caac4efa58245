#include "models/model_ceiling.h"

#include <torch/cuda.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <new>
#include <vector>

#include "models/manifest.h"
#include "models/model_loader.h"
#include "models/oom_classify.h"

#ifdef SEGMENTOR_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace segmentor {

// Note [What the ceiling measures]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Only the networks' forward passes: the input tensor is made once, on the device, in the run
// dtype, and reused; no decode, no resize, no upload, no mask decoding or download. That is the
// most the card can do with these models, so end-to-end frames/s divided by it says how much the
// pipeline (gate, preprocessing, transfers, YOLO decoding, threads) costs. Each timed batch ends
// with a device synchronise, so queued kernels are counted. The module is frozen where LibTorch
// can, as the pipeline's loader does (Note [Freezing TorchScript modules]).

namespace {

using SteadyClock = std::chrono::steady_clock;

void synchronize(const c10::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

std::string message_of(const std::exception& e) {
  if (const auto* c10_error = dynamic_cast<const c10::Error*>(&e)) {
    return c10_error->what_without_backtrace();
  }
  return e.what();
}

// Runs one batch size; fills `point`. Catches everything: one bad batch size is a data point.
void measure_point(torch::jit::Module& module, const ModelManifest& manifest,
                   const c10::Device& device, at::ScalarType dtype, const CeilingOptions& options,
                   CeilingPoint& point) {
  try {
    c10::InferenceMode guard;
    const std::vector<std::int64_t> shape =
        manifest.layout == InputLayout::kNhwc
            ? std::vector<std::int64_t>{point.batch, manifest.input_height, manifest.input_width, 3}
            : std::vector<std::int64_t>{point.batch, 3, manifest.input_height,
                                        manifest.input_width};
    const at::Tensor input = at::rand(shape, at::TensorOptions().device(device).dtype(dtype));
    std::vector<c10::IValue> inputs{input};
    for (int i = 0; i < options.warmup_iterations; ++i) module.forward(inputs);
    synchronize(device);
    const auto start = SteadyClock::now();
    double elapsed = 0;
    int iterations = 0;
    while (iterations < std::max(1, options.max_iterations)) {
      module.forward(inputs);
      synchronize(device);
      ++iterations;
      elapsed = std::chrono::duration<double>(SteadyClock::now() - start).count();
      if (elapsed >= options.seconds_per_point) break;
    }
    point.iterations = iterations;
    point.ms_per_batch = 1000.0 * elapsed / iterations;
    point.frames_per_second = elapsed > 0 ? point.batch * iterations / elapsed : 0;
  } catch (const c10::OutOfMemoryError& e) {
    point.out_of_memory = true;
    point.error = message_of(e);
  } catch (const std::bad_alloc&) {
    point.out_of_memory = true;
    point.error = "host allocation failed";
  } catch (const std::exception& e) {
    point.error = message_of(e);
    point.out_of_memory = looks_like_out_of_memory(point.error);
  }
#ifdef SEGMENTOR_WITH_CUDA
  // The next, smaller-or-larger batch starts from a clean cache rather than a fragmented one.
  if (point.out_of_memory && device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
}

}  // namespace

Result<ModelCeiling> measure_model_ceiling(const std::filesystem::path& model_file,
                                           const CeilingOptions& options) {
  SEGMENTOR_ASSIGN_OR_RETURN(ModelManifest manifest, read_manifest(manifest_path_for(model_file)));
  SEGMENTOR_ASSIGN_OR_RETURN(const std::string device_name, resolve_device(options.device));
  ModelCeiling ceiling;
  ceiling.model = manifest.name;
  ceiling.device = device_name;
  ceiling.input_width = manifest.input_width;
  ceiling.input_height = manifest.input_height;
  torch::jit::Module module;
  c10::Device device(device_name);
  at::ScalarType dtype = at::kFloat;
  configure_torchscript();  // the ceiling runs the models as the pipeline does
  try {
    ceiling.fp16 = device.is_cuda() && options.use_fp16;
    dtype = ceiling.fp16 ? at::kHalf : at::kFloat;
    module = torch::jit::load(model_file.string(), device);
    module.eval();
    // Only floating tensors: integer index buffers must stay integers (see torch_mask_model.cpp).
    for (at::Tensor parameter : module.parameters()) {
      if (parameter.is_floating_point()) parameter.set_data(parameter.to(dtype));
    }
    for (at::Tensor buffer : module.buffers()) {
      if (buffer.is_floating_point()) buffer.set_data(buffer.to(dtype));
    }
    try {
      module = torch::jit::freeze(module);
    } catch (const std::exception&) {
      // Not every graph freezes; the plain module is what the pipeline would run then.
    }
  } catch (const std::exception& e) {
    const std::string message = message_of(e);
    if (looks_like_out_of_memory(message)) {
      return out_of_memory("ceiling: loading " + model_file.string() + ": " + message);
    }
    return corrupt_data("ceiling: cannot load " + model_file.string() + ": " + message);
  }

  for (const int batch : options.batch_sizes) {
    if (batch <= 0) return invalid_argument("ceiling: batch sizes must be > 0");
    CeilingPoint point;
    point.batch = batch;
    measure_point(module, manifest, device, dtype, options, point);
    if (point.frames_per_second > ceiling.best_frames_per_second) {
      ceiling.best_frames_per_second = point.frames_per_second;
      ceiling.best_batch = batch;
    }
    ceiling.points.push_back(std::move(point));
  }
  if (ceiling.best_batch == 0) {
    const std::string why = ceiling.points.empty() ? "no batch sizes" : ceiling.points[0].error;
    if (!ceiling.points.empty() && ceiling.points[0].out_of_memory) {
      return out_of_memory("ceiling: " + ceiling.model + " does not run at batch " +
                           std::to_string(ceiling.points[0].batch) + ": " + why);
    }
    return internal_error("ceiling: " + ceiling.model + " did not run: " + why);
  }
  return ceiling;
}

double combined_ceiling_fps(const std::vector<ModelCeiling>& models) {
  if (models.empty()) return 0;
  double seconds_per_frame = 0;
  for (const ModelCeiling& model : models) {
    if (model.best_frames_per_second <= 0) return 0;
    seconds_per_frame += 1.0 / model.best_frames_per_second;
  }
  return 1.0 / seconds_per_frame;
}

}  // namespace segmentor
