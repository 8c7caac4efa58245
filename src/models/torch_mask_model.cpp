#include "models/torch_mask_model.h"

#include <torch/csrc/jit/runtime/jit_exception.h>

#include <chrono>
#include <new>
#include <optional>
#include <utility>
#include <vector>

#include "common/elapsed.h"
#include "models/image_tensor.h"
#include "models/oom_classify.h"
#include "models/person_detector_decode.h"
#include "models/script_error.h"
#include "models/stage_clock.h"
#include "models/yolo_seg_decode.h"

#ifdef SEGMENTOR_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace segmentor {

// Note [Freezing TorchScript modules]
// torch::jit::freeze inlines the weights as constants and folds what it can (conv-bn, for one).
// It is not guaranteed to work on every exported graph, and a folded graph may round differently.
// So it is tried at load time and kept only when it succeeds and gives the same outputs as the
// plain module on a probe input (within a tolerance suited to the dtype). The probe forward also
// serves as the first warm-up.
//
// optimize_for_inference goes further, and only on the CPU. It rewrites a method's graph in
// place, but a method that has run keeps the executor it built from the graph at its first call,
// so it must be given a module that has never run: the check optimises a clone taken before the
// frozen module's first pass, and compares that clone's own output. (Until 2026-11-30 it optimised
// the module it had just run: the check passed on a graph that never ran, and only a restart that
// trusted the verdict ran the optimised one.) On CUDA it is not used: the optimised graphs ran
// slower there, the bundled models at 206.6 against 238.3 frames/s and the stand-ins at 53.2
// against 59.6-59.9 (cap 8 GiB, H200, 2026-11-30; bench/RESULTS.md, seventh session). On the
// CPU it pays: IS-Net took 1.80 s per image against 1.93 frozen alone on the 2-core dev VM.

namespace {

std::string message_of(const c10::Error& e) { return e.what_without_backtrace(); }

// Every tensor of a (possibly nested) tuple/list output, in order.
void collect_tensors(const c10::IValue& value, std::vector<at::Tensor>& out) {
  if (value.isTensor()) {
    out.push_back(value.toTensor());
  } else if (value.isTuple()) {
    for (const auto& element : value.toTupleRef().elements()) collect_tensors(element, out);
  } else if (value.isList()) {
    for (const c10::IValue& element : value.toListRef()) collect_tensors(element, out);
  }
}

bool same_outputs(const c10::IValue& a, const c10::IValue& b, at::ScalarType dtype) {
  std::vector<at::Tensor> ta, tb;
  collect_tensors(a, ta);
  collect_tensors(b, tb);
  if (ta.size() != tb.size() || ta.empty()) return false;
  const double tolerance = dtype == at::kHalf ? 1e-2 : 1e-4;
  for (std::size_t i = 0; i < ta.size(); ++i) {
    if (ta[i].sizes() != tb[i].sizes()) return false;
    if (!at::allclose(ta[i].to(at::kFloat), tb[i].to(at::kFloat), tolerance, tolerance)) {
      return false;
    }
  }
  return true;
}

// A deterministic, textured image at the network's input size, for the freeze check.
RgbImage probe_image(int width, int height) {
  RgbImage image{width, height, {}};
  image.pixels.resize(image.pixel_count() * 3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      auto* p = &image.pixels[(static_cast<std::size_t>(y) * width + x) * 3];
      p[0] = static_cast<std::uint8_t>((x * 255) / std::max(1, width - 1));
      p[1] = static_cast<std::uint8_t>((y * 255) / std::max(1, height - 1));
      p[2] = static_cast<std::uint8_t>(((x / 8 + y / 8) % 2) * 255);
    }
  }
  return image;
}

// probe_image on the device, prepared as the network takes it: for the freeze check, batch
// probes and warming.
at::Tensor probe_input(const ModelManifest& manifest, const c10::Device& device,
                       at::ScalarType dtype) {
  return make_input(probe_image(manifest.input_width, manifest.input_height), manifest,
                    stretch_geometry(manifest.input_width, manifest.input_height), device, dtype);
}

c10::IValue forward(torch::jit::Module& module, const at::Tensor& input) {
  c10::InferenceMode guard;
  std::vector<c10::IValue> inputs{input};
  return module.forward(inputs);
}

// Applies freeze (and then, on the CPU, optimize_for_inference) where they keep the output; see
// the Note. Fills checks.frozen and checks.optimized.
void try_freeze(torch::jit::Module& module, const ModelManifest& manifest,
                const c10::Device& device, at::ScalarType dtype, LoadChecks& checks) {
  const at::Tensor input = probe_input(manifest, device, dtype);
  const c10::IValue reference = forward(module, input);
  torch::jit::Module frozen;
  std::optional<torch::jit::Module> never_run;  // what optimize_for_inference may rewrite
  try {
    frozen = torch::jit::freeze(module);
  } catch (const std::exception&) {
    return;  // keep the plain module (freeze runs outside InferenceMode on purpose)
  }
  if (!device.is_cuda()) {
    try {
      never_run = frozen.clone();  // before the frozen module's first pass
    } catch (const std::exception&) {
      // No clone: frozen alone, never an optimised graph the check did not run.
    }
  }
  try {
    if (!same_outputs(reference, forward(frozen, input), dtype)) return;
  } catch (const std::exception&) {
    return;
  }
  module = frozen;
  checks.frozen = true;
  if (!never_run) return;
  try {
    torch::jit::Module candidate = torch::jit::optimize_for_inference(*never_run);
    if (same_outputs(reference, forward(candidate, input), dtype)) {
      module = candidate;
      checks.optimized = true;
    }
  } catch (const std::exception&) {
    // Not available in this LibTorch build or not applicable to this graph: frozen is enough.
  }
}

// Note [Load checks on disk] (memory/calibration_cache.h): freezes and optimises as an earlier
// load's checks found, with no probe pass. A pass that throws now (it did not then) leaves the
// module as it was, so the worst a stale verdict can do is a plain, slower module.
void apply_known_freeze(torch::jit::Module& module, const LoadChecks& known, LoadChecks& checks) {
  if (!known.frozen) return;
  try {
    module = torch::jit::freeze(module);
    checks.frozen = true;
  } catch (const std::exception&) {
    return;
  }
  if (!known.optimized) return;
  try {
    module = torch::jit::optimize_for_inference(module);
    checks.optimized = true;
  } catch (const std::exception&) {
  }
}

#ifdef SEGMENTOR_WITH_CUDA
// The stream for CUDA_STREAMS=worker: one per calling thread. The engine calls from one thread
// per gate slot (Note [GPU work runs on slot threads] in pipeline/slot_threads.h).
c10::cuda::CUDAStream worker_stream(c10::DeviceIndex device) {
  thread_local std::optional<c10::cuda::CUDAStream> per_thread;
  if (!per_thread || per_thread->device_index() != device) {
    per_thread = c10::cuda::getStreamFromPool(false, device);
  }
  return *per_thread;
}
#endif

TorchMaskModel::StreamMode parse_stream_mode(const std::string& mode) {
  if (mode == "pool") return TorchMaskModel::StreamMode::kPool;
  if (mode == "default") return TorchMaskModel::StreamMode::kDefault;
  return TorchMaskModel::StreamMode::kWorker;
}

// Puts the calling thread on the stream CUDA_STREAMS picks, for its lifetime (Note [One stream
// per call]).
class CallStream {
 public:
  CallStream(const c10::Device& device, TorchMaskModel::StreamMode mode) {
#ifdef SEGMENTOR_WITH_CUDA
    if (device.is_cuda() && mode == TorchMaskModel::StreamMode::kPool) {
      guard_.emplace(c10::cuda::getStreamFromPool(false, device.index()));
    } else if (device.is_cuda() && mode == TorchMaskModel::StreamMode::kWorker) {
      guard_.emplace(worker_stream(device.index()));
    }
#else
    (void)device;
    (void)mode;
#endif
  }

 private:
#ifdef SEGMENTOR_WITH_CUDA
  std::optional<c10::cuda::CUDAStreamGuard> guard_;
#endif
};

// Waits for the calling thread's current stream: before another thread's stream reads what this
// one wrote (Note [Batching admitted tasks]: inputs go to the batcher's stream, outputs back).
void wait_for_stream(const c10::Device& device) {
#ifdef SEGMENTOR_WITH_CUDA
  if (device.is_cuda()) c10::cuda::getCurrentCUDAStream(device.index()).synchronize();
#else
  (void)device;
#endif
}

// The current exception as a Status: out-of-memory apart from the rest. Call inside a catch.
Status failure_status(const std::string& where) {
  try {
    throw;
  } catch (const c10::OutOfMemoryError& e) {
    return out_of_memory(where + ": " + message_of(e));
  } catch (const c10::Error& e) {
    // Note [TorchScript errors lead with the error] (script_error.h)
    const std::string message = lead_with_script_error(message_of(e));
    if (looks_like_out_of_memory(message)) return out_of_memory(where + ": " + message);
    return internal_error(where + ": " + message);
  } catch (const std::bad_alloc&) {
    return out_of_memory(where + ": host allocation failed");
  } catch (const torch::jit::JITException& e) {
    // Note [A model's raise is about its input]: a `raise` in the model's own code (the only
    // source of this exception: the interpreter rethrows an op's failure as c10::Error or
    // std::runtime_error) is a check the model makes on what it was given. The same input
    // raises again, on any replica, so it is not worth a retry: kInvalidArgument, which the
    // service dead-letters at once as a ProcessingError. A CUDA fault or an unexpected library
    // error stays kInternal and is retried, since it may pass.
    const std::string message = lead_with_script_error(e.what());
    if (looks_like_out_of_memory(message)) return out_of_memory(where + ": " + message);
    return invalid_argument(where + " refused the input: " + message);
  } catch (const std::exception& e) {
    const std::string message = lead_with_script_error(e.what());
    if (looks_like_out_of_memory(message)) return out_of_memory(where + ": " + message);
    return internal_error(where + ": " + message);
  } catch (...) {
    return internal_error(where + ": an unknown exception");
  }
}

// Slice `index` of `count` along dim 0 of every tensor in `value`, in the same structure (a list
// becomes a tuple: the decoders read both). kInternal when a tensor's dim 0 is not `count`.
Result<c10::IValue> slice_output(const c10::IValue& value, std::int64_t index, std::int64_t count) {
  if (value.isTensor()) {
    const at::Tensor& tensor = value.toTensor();
    if (tensor.dim() == 0 || tensor.size(0) != count) {
      return internal_error("an output of a batch of " + std::to_string(count) +
                            " has no batch dimension of that size");
    }
    return c10::IValue(tensor.slice(0, index, index + 1));
  }
  std::vector<c10::IValue> elements;
  if (value.isTuple()) {
    for (const auto& element : value.toTupleRef().elements()) elements.push_back(element);
  } else if (value.isList()) {
    for (const c10::IValue& element : value.toListRef()) elements.push_back(element);
  } else {
    return value;  // not a tensor: the same for every input
  }
  std::vector<c10::IValue> sliced;
  sliced.reserve(elements.size());
  for (const c10::IValue& element : elements) {
    SEGMENTOR_ASSIGN_OR_RETURN(c10::IValue one, slice_output(element, index, count));
    sliced.push_back(std::move(one));
  }
  return c10::IValue(c10::ivalue::Tuple::create(std::move(sliced)));
}

Result<std::vector<c10::IValue>> split_output(const c10::IValue& output, std::int64_t count) {
  std::vector<c10::IValue> out;
  out.reserve(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) {
    SEGMENTOR_ASSIGN_OR_RETURN(c10::IValue one, slice_output(output, i, count));
    out.push_back(std::move(one));
  }
  return out;
}

// The probe image with every byte inverted: a second input that differs everywhere.
RgbImage inverted(RgbImage image) {
  for (auto& byte : image.pixels) byte = static_cast<std::uint8_t>(255 - byte);
  return image;
}

// Note [Batching admitted tasks]: a traced graph may have batch 1 baked into a reshape, and then
// batch 2 fails or, worse, mixes the inputs up. So a model batches only when batch 2 of two
// different inputs gives, slice by slice, what each gives alone (within the dtype's tolerance).
bool batches_correctly(torch::jit::Module& module, const ModelManifest& manifest,
                       const c10::Device& device, at::ScalarType dtype) {
  try {
    c10::InferenceMode guard;
    const LetterboxGeometry geometry =
        stretch_geometry(manifest.input_width, manifest.input_height);
    const RgbImage first = probe_image(manifest.input_width, manifest.input_height);
    const at::Tensor a = make_input(first, manifest, geometry, device, dtype);
    const at::Tensor b = make_input(inverted(first), manifest, geometry, device, dtype);
    const c10::IValue alone_a = forward(module, a);
    const c10::IValue alone_b = forward(module, b);
    auto split = split_output(forward(module, at::cat({a, b}, 0)), 2);
    return split.ok() && same_outputs(alone_a, (*split)[0], dtype) &&
           same_outputs(alone_b, (*split)[1], dtype);
  } catch (const std::exception&) {
    return false;  // batch 2 does not run: the model stays unbatched
  }
}

void cast_floating_state(torch::jit::Module& module, at::ScalarType dtype) {
  for (at::Tensor parameter : module.parameters()) {
    if (parameter.is_floating_point()) parameter.set_data(parameter.to(dtype));
  }
  for (at::Tensor buffer : module.buffers()) {
    if (buffer.is_floating_point()) buffer.set_data(buffer.to(dtype));
  }
}

}  // namespace

Result<std::unique_ptr<TorchMaskModel>> TorchMaskModel::create(
    const std::filesystem::path& model_file, ModelManifest manifest, const std::string& device,
    const ModelOptions& options) {
  const std::string file = model_file.string();
  try {
    const c10::Device torch_device(device);
    const bool fp16 = torch_device.is_cuda() && options.use_fp16;
    const at::ScalarType dtype = fp16 ? at::kHalf : at::kFloat;

    // Note [A fast start] (runtime.cpp): each part of a load is timed, so a slow start says where.
    const auto load_start = std::chrono::steady_clock::now();
    torch::jit::Module module;
    try {
      module = torch::jit::load(file, torch_device);
    } catch (const c10::Error& e) {
      if (looks_like_out_of_memory(message_of(e))) {
        return out_of_memory("loading model " + file + ": " + message_of(e));
      }
      return corrupt_data("cannot load TorchScript model " + file + " (" + message_of(e) + "); " +
                          kModelFetchHint);
    }
    module.eval();
    // Weights stored in float16 (or float32 meant for an fp16 run) are cast to the dtype we feed;
    // CPU kernels have no half convolution, and mixed dtypes fail in every kernel. Only floating
    // tensors: jit::Module::to(dtype) would also turn integer buffers (a Swin transformer's
    // relative-position index, say) into floats, which then fail as indices.
    cast_floating_state(module, dtype);

    const double load_seconds = seconds_since(load_start);

    // Note [Load checks on disk]: verdicts found by an earlier load replace the probe passes.
    const auto known = options.known_checks.find(manifest.name);
    const LoadChecks* known_checks = known == options.known_checks.end() ? nullptr : &known->second;
    LoadChecks checks;
    bool checks_run = false;
    const auto freeze_start = std::chrono::steady_clock::now();
    if (options.freeze) {
      if (known_checks != nullptr) {
        apply_known_freeze(module, *known_checks, checks);
      } else {
        try_freeze(module, manifest, torch_device, dtype, checks);
        checks_run = true;
      }
    }
    const double freeze_seconds = seconds_since(freeze_start);
    const auto batch_start = std::chrono::steady_clock::now();
    if (options.max_batch > 1 && manifest.batchable) {
      if (known_checks != nullptr && known_checks->batches.has_value()) {
        checks.batches = *known_checks->batches;
      } else {
        checks.batches = batches_correctly(module, manifest, torch_device, dtype);
        checks_run = true;
      }
    }
    const int max_batch = checks.batches.value_or(false) ? options.max_batch : 1;
    const double batch_seconds = seconds_since(batch_start);

    ModelInfo info;
    info.name = manifest.name;
    info.path = file;
    info.kind = manifest.kind;
    info.input_width = manifest.input_width;
    info.input_height = manifest.input_height;
    info.device = device;
    info.fp16 = fp16;
    info.is_test_model = manifest.is_test_model;
    info.checks = checks;
    info.checks_known = known_checks != nullptr;
    info.checks_run = checks_run;
    info.load_seconds = {load_seconds, freeze_seconds, batch_seconds};
    return std::unique_ptr<TorchMaskModel>(
        new TorchMaskModel(std::move(module), std::move(manifest), std::move(info), torch_device,
                           dtype, options.inject_oom_rate, parse_stream_mode(options.cuda_streams),
                           options.person_min_score, max_batch));
  } catch (const c10::OutOfMemoryError& e) {
    return out_of_memory("loading model " + file + ": " + message_of(e));
  } catch (const c10::Error& e) {
    if (looks_like_out_of_memory(message_of(e))) {
      return out_of_memory("loading model " + file + ": " + message_of(e));
    }
    return internal_error("preparing model " + file + ": " + message_of(e));
  } catch (const std::bad_alloc&) {
    return out_of_memory("loading model " + file + ": host allocation failed");
  } catch (const std::exception& e) {
    return internal_error("preparing model " + file + ": " + e.what());
  }
}

TorchMaskModel::TorchMaskModel(torch::jit::Module module, ModelManifest manifest, ModelInfo info,
                               c10::Device device, at::ScalarType dtype, double inject_oom_rate,
                               StreamMode stream_mode, std::optional<double> person_min_score,
                               int max_batch)
    : module_(std::move(module)),
      manifest_(std::move(manifest)),
      info_(std::move(info)),
      device_(device),
      dtype_(dtype),
      inject_oom_rate_(inject_oom_rate),
      stream_mode_(stream_mode),
      random_(std::random_device{}()) {
  detector_options_.num_classes = manifest_.num_classes;
  detector_options_.person_class = manifest_.person_class;
  detector_options_.strides = manifest_.strides;
  detector_options_.reg_bins = manifest_.reg_bins;
  detector_options_.min_score = person_min_score.value_or(manifest_.conf_threshold);
  detector_options_.iou_threshold = manifest_.iou_threshold;
  detector_options_.box_margin = manifest_.box_margin;
  if (max_batch > 1) start_batcher(max_batch);
}

void TorchMaskModel::start_batcher(int max_batch) {
  ForwardBatcherOptions options;
  options.max_batch = max_batch;
  batcher_ = std::make_unique<Batcher>(
      options, [this](std::vector<at::Tensor>& inputs) { return forward_batch(inputs); });
}

void TorchMaskModel::limit_batch(int max_batch) {
  if (batcher_) batcher_->limit(max_batch);
}

void TorchMaskModel::run_passes_on_own_thread() {
  if (!batcher_) start_batcher(1);  // one input per pass: the graph may not batch
  own_thread_ = true;
}

BatchStats TorchMaskModel::batch_stats() const {
  return batcher_ ? batcher_->stats() : BatchStats{};
}

Result<std::vector<c10::IValue>> TorchMaskModel::forward_batch(std::vector<at::Tensor>& inputs) {
  try {
    c10::InferenceMode guard;
    CallStream stream(device_, stream_mode_);
    // Note [Flat batches run padded]: copies of the first input up to the limit, outputs dropped.
    const std::size_t real = inputs.size();
    std::vector<at::Tensor> padded;
    if (pad_) {
      padded = inputs;
      padded.resize(std::max(real, static_cast<std::size_t>(batcher_->max_batch())),
                    inputs.front());
    }
    const std::vector<at::Tensor>& batch = pad_ ? padded : inputs;
    const at::Tensor stacked = batch.size() == 1 ? batch.front() : at::cat(batch, 0);
    const c10::IValue output = forward(module_, stacked);
    SEGMENTOR_ASSIGN_OR_RETURN(auto outputs,
                               split_output(output, static_cast<std::int64_t>(batch.size())));
    outputs.resize(real);
    wait_for_stream(device_);  // the callers read the outputs on their own streams
    return outputs;
  } catch (...) {
    return failure_status("model " + info_.name + " on " + info_.device + ", batch of " +
                          std::to_string(inputs.size()));
  }
}

Status TorchMaskModel::probe_batch(int batch) {
  if (batch < 1) return invalid_argument(info_.name + ": batch " + std::to_string(batch));
  try {
    c10::InferenceMode guard;
    CallStream stream(device_, stream_mode_);
    const at::Tensor one = probe_input_once();
    const at::Tensor stacked =
        batch == 1 ? one
                   : at::cat(std::vector<at::Tensor>(static_cast<std::size_t>(batch), one), 0);
    forward(module_, stacked);  // its output is dropped: only the memory it took matters
    wait_for_stream(device_);
    return Status::Ok();
  } catch (...) {
    return failure_status("model " + info_.name + " on " + info_.device + ", batch probe of " +
                          std::to_string(batch));
  }
}

Status TorchMaskModel::warm_batches(int up_to) {
  // Passes on the slots' threads (no batcher, or one limited to 1 and bypassed): nothing to warm
  // here; the slots' warm-up calls them there.
  if (!passes_on_own_thread()) return Status::Ok();
  // A padded model runs every batch at its limit: one shape, one pass to warm.
  const int largest = pad_ ? 1 : std::min(up_to, batcher_->max_batch());
  try {
    c10::InferenceMode guard;
    CallStream stream(device_, stream_mode_);
    first_calls_once();
    const at::Tensor one = probe_input_once();
    wait_for_stream(device_);  // the batcher's stream reads it
    for (int batch = 1; batch <= largest; ++batch) {
      for (Result<c10::IValue>& output : batcher_->submit_together(
               std::vector<at::Tensor>(static_cast<std::size_t>(batch), one))) {
        if (!output.ok())
          return output.status().with_context("warming batches of " + std::to_string(batch));
      }
    }
    return Status::Ok();
  } catch (...) {
    return failure_status("model " + info_.name + " on " + info_.device + ", warming batches");
  }
}

// Note [First calls on one thread]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// TorchScript's executor profiles a method's first call and builds its optimised plan at the
// next; the plan is shared by every thread. The load's checks make those calls on the loading
// thread, but a load that took its verdicts from disk (Note [Load checks on disk]) makes none,
// and then the slots' first tasks made them from several threads at once. The process ran the
// unbatched stand-ins slower from then on, with a tail: 58.0-58.8 frames/s and p99 478-601 ms
// after a restart, against 59.1-60.2 and p99 283-286 ms when the first two calls ran on one
// thread (H200, cap 8 GiB, 1,000 frames, 2026-11-30, bench/RESULTS.md, eighth session). So on a
// GPU a model whose load ran no pass makes two probe calls under a once-flag at its first use:
// the first caller makes them while the others wait. Not at load: a model that a run never
// calls (the people segmenter on frames without people) costs nothing, and calls at load cost
// a restarted `run` 2.6 s more before its first mask. The CPU lane runs one call at a time.
// A model whose passes run on a thread of its own makes the two calls there, through its
// batcher: on a slot's thread they would also pay that thread's first call, which can be dear
// (Note [Dear first calls on a new thread]); the warm-up makes them before it warms the batches.
void TorchMaskModel::first_calls_once() {
  if (!device_.is_cuda() || info_.checks_run) return;
  std::call_once(first_calls_, [this] {
    const at::Tensor input = probe_input_once();
    const bool own_thread = passes_on_own_thread();
    if (own_thread) wait_for_stream(device_);  // the batcher's stream reads the input
    for (int call = 0; call < 2; ++call) {
      if (own_thread) {
        batcher_->submit_together({input});  // a failure here is met again by the real call
      } else {
        forward(module_, input);
      }
    }
  });
}

at::Tensor TorchMaskModel::probe_input_once() {
  std::call_once(probe_once_, [this] {
    probe_image_ = probe_image(manifest_.input_width, manifest_.input_height);
  });
  return make_input(probe_image_, manifest_,
                    stretch_geometry(manifest_.input_width, manifest_.input_height), device_,
                    dtype_);
}

bool TorchMaskModel::should_inject_oom() {
  if (inject_oom_rate_ <= 0.0) return false;
  std::lock_guard lock(random_mutex_);
  return std::bernoulli_distribution(std::min(1.0, inject_oom_rate_))(random_);
}

Result<Mask> TorchMaskModel::segment(const RgbImage& image) {
  if (image.width <= 0 || image.height <= 0 || image.pixels.size() != image.pixel_count() * 3) {
    return invalid_argument(info_.name + ": image " + std::to_string(image.width) + "x" +
                            std::to_string(image.height) + " with " +
                            std::to_string(image.pixels.size()) + " bytes is not RGB");
  }
  const std::string where = "model " + info_.name + " on " + info_.device;
  try {
    c10::InferenceMode guard;
    // Note [One stream per call]: the engine runs several admitted tasks on one GPU at once.
    // On the default stream their kernels would serialise; a stream of their own lets them
    // overlap, and the final copy of the mask to the host synchronises that stream only. But the
    // caching allocator keeps freed blocks per stream: with a new pooled stream per call (kPool,
    // up to 32 streams) the cache grew to an 8 GiB cap with one task in flight on the H100
    // (bench/RESULTS.md, 2026-11-27). kWorker keeps one stream per calling thread, and the
    // engine calls from one thread per gate slot; kDefault queues every call on the default
    // stream. A batched model's forward passes run on its batcher's thread, hence its stream.
    CallStream stream(device_, stream_mode_);
    first_calls_once();
    if (should_inject_oom()) {
      // Shaped like the caching allocator's own error, so the real classification runs.
      TORCH_CHECK_WITH(OutOfMemoryError, false,
                       "CUDA out of memory. Tried to allocate 20.00 MiB (injected by "
                       "SEGMENTOR_INJECT_OOM_RATE)");
    }
    return run(image);
  } catch (...) {
    return failure_status(where);
  }
}

Result<Mask> TorchMaskModel::run(const RgbImage& image) {
  StageClock clock(device_);  // Note [Where the time goes]; the rest is post-processing
  // Note [Batching admitted tasks]: an idle batcher waits for inputs still being prepared.
  // A batcher limited to 1 (calibration found that batches do not fit or do not pay: Note [A
  // batch must pay for itself]) is bypassed: the pass runs here, on this slot's own thread and
  // stream, beside the other slots' passes, instead of one at a time on the batcher's thread.
  // Unless every new thread's first call is dear (Note [Dear first calls on a new thread]).
  const bool batching = passes_on_own_thread();
  std::optional<Batcher::Preparing> preparing;
  if (batching) preparing.emplace(*batcher_);
  const LetterboxGeometry geometry = geometry_for(manifest_, image.width, image.height);
  const at::Tensor input = make_input(image, manifest_, geometry, device_, dtype_);
  clock.lap(Stage::kUpload);
  c10::IValue output;
  if (batching) {
    wait_for_stream(device_);  // the batcher's stream reads the input
    SEGMENTOR_ASSIGN_OR_RETURN(output, batcher_->submit(input, &*preparing));
  } else {
    output = forward(module_, input);
  }
  clock.lap(Stage::kModel);

  if (manifest_.kind == ModelKind::kForegroundProbability ||
      manifest_.kind == ModelKind::kPersonProbability) {
    return probability_to_mask(output, geometry, image.width, image.height);
  }
  std::vector<at::Tensor> tensors;
  collect_tensors(output, tensors);
  if (manifest_.kind == ModelKind::kPersonDetector) {
    Result<std::vector<YoloDetection>> boxes = decode_person_detections(
        tensors, manifest_.input_width, manifest_.input_height, detector_options_);
    if (!boxes.ok()) return boxes.status().with_context("model " + info_.name);
    return person_box_mask(*boxes, geometry, image.width, image.height, manifest_.box_margin);
  }
  if (tensors.size() < 2) {
    return internal_error("model " + info_.name +
                          ": a yolo_seg model must return (predictions, prototypes)");
  }
  YoloDecodeOptions options;
  options.num_classes = manifest_.num_classes;
  options.person_class = manifest_.person_class;
  options.conf_threshold = manifest_.conf_threshold;
  options.iou_threshold = manifest_.iou_threshold;
  options.mask_threshold = manifest_.mask_threshold;
  Result<Mask> mask =
      decode_yolo_seg(tensors[0], tensors[1], geometry, image.width, image.height, options);
  if (!mask.ok()) return mask.status().with_context("model " + info_.name);
  return mask;
}

Result<Mask> TorchMaskModel::probability_to_mask(const c10::IValue& output,
                                                 const LetterboxGeometry& geometry,
                                                 int source_width, int source_height) const {
  at::Tensor map;
  if (output.isTensor()) {
    map = output.toTensor();
  } else {
    std::vector<c10::IValue> elements;
    if (output.isTuple()) {
      const auto& tuple = output.toTupleRef().elements();
      elements.assign(tuple.begin(), tuple.end());
    } else if (output.isList()) {
      for (const c10::IValue& element : output.toListRef()) elements.push_back(element);
    }
    const auto count = static_cast<int>(elements.size());
    const int index =
        manifest_.output_index < 0 ? count + manifest_.output_index : manifest_.output_index;
    if (index < 0 || index >= count || !elements[static_cast<std::size_t>(index)].isTensor()) {
      return internal_error("model " + info_.name + ": output_index " +
                            std::to_string(manifest_.output_index) +
                            " does not pick a tensor of "
                            "an output with " +
                            std::to_string(count) + " elements");
    }
    map = elements[static_cast<std::size_t>(index)].toTensor();
  }

  map = map.to(at::kFloat);
  if (manifest_.layout == InputLayout::kNhwc && map.dim() == 4 && map.size(3) == 1) {
    map = map.permute({0, 3, 1, 2});
  }
  const bool ok_shape = (map.dim() == 4 && map.size(0) == 1 && map.size(1) == 1) ||
                        (map.dim() == 3 && map.size(0) == 1) || map.dim() == 2;
  if (!ok_shape) {
    std::string shape;
    for (std::int64_t i = 0; i < map.dim(); ++i) {
      shape += (i ? "," : "") + std::to_string(map.size(i));
    }
    return internal_error("model " + info_.name + ": probability output has shape [" + shape +
                          "], expected [1,1,h,w]" +
                          (manifest_.layout == InputLayout::kNhwc ? " or [1,h,w,1]" : ""));
  }
  map = map.reshape({1, 1, map.size(-2), map.size(-1)});
  if (manifest_.output_activation == OutputActivation::kSigmoid) map = map.sigmoid();
  const at::Tensor resized = resample_to_source(map, geometry, source_width, source_height);
  return threshold_to_mask(resized, manifest_.mask_threshold);
}

}  // namespace segmentor
