// The TorchScript-backed MaskModel. Internal to segmentor_models: the rest of the project gets it
// through load_mask_model (model_loader.h) as a plain MaskModel.
#pragma once

#include <torch/script.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>

#include "models/forward_batcher.h"
#include "models/image_tensor.h"
#include "models/manifest.h"
#include "models/mask_model.h"
#include "models/model_loader.h"
#include "models/person_detector_decode.h"

namespace segmentor {

// Owns one TorchScript module on one device, with the manifest that says how to feed it.
// With batching, concurrent segment() calls share forward passes run on the batcher's thread
// (Note [Batching admitted tasks], forward_batcher.h).
// Thread-safe: segment() only reads the module (the TorchScript interpreter keeps per-call state
// and locks its own graph-executor caches), and the fault-injection generator has its own mutex.
// On CUDA each calling thread runs on a stream of its own (CUDA_STREAMS=worker, the default), so
// concurrent tasks on one GPU overlap instead of queueing; see Note [One stream per call].
class TorchMaskModel final : public MaskModel {
 public:
  // `device` is already resolved ("cpu", "cuda:0"). Errors as load_mask_model's.
  static Result<std::unique_ptr<TorchMaskModel>> create(const std::filesystem::path& model_file,
                                                        ModelManifest manifest,
                                                        const std::string& device,
                                                        const ModelOptions& options);

  TorchMaskModel(const TorchMaskModel&) = delete;
  TorchMaskModel& operator=(const TorchMaskModel&) = delete;

  const ModelInfo& info() const override { return info_; }
  const ModelManifest& manifest() const { return manifest_; }
  // Never throws; every LibTorch failure becomes kOutOfMemory or kInternal.
  Result<Mask> segment(const RgbImage& image) override;

  // Note [Batching admitted tasks] (forward_batcher.h).
  int max_batch() const override { return batcher_ ? batcher_->max_batch() : 1; }
  void limit_batch(int max_batch) override;
  Status probe_batch(int batch) override;
  Status warm_batches(int up_to) override;
  BatchStats batch_stats() const override;
  // Without a batcher (batches off, or a graph that bakes in batch 1), starts one with a cap of 1.
  void run_passes_on_own_thread() override;
  bool passes_on_own_thread() const override {
    return batcher_ && (own_thread_ || batcher_->max_batch() > 1);
  }
  void pad_batches() override { pad_ = batcher_ != nullptr; }
  bool pads_batches() const override { return pad_; }

  // Which CUDA stream a call runs on (CUDA_STREAMS); see Note [One stream per call].
  enum class StreamMode { kPool, kWorker, kDefault };

 private:
  using Batcher = ForwardBatcher<at::Tensor, c10::IValue>;

  // `max_batch` > 1 starts a batcher (the caller checked that the model batches correctly).
  TorchMaskModel(torch::jit::Module module, ModelManifest manifest, ModelInfo info,
                 c10::Device device, at::ScalarType dtype, double inject_oom_rate,
                 StreamMode stream_mode, std::optional<double> person_min_score, int max_batch);

  // Starts the thread that runs this model's forward passes (Note [Batching admitted tasks]).
  void start_batcher(int max_batch);
  // The work of segment(); LibTorch exceptions escape to segment()'s handlers.
  Result<Mask> run(const RgbImage& image);
  // The batcher's work: one forward pass of the stacked inputs, split per input. On its thread.
  Result<std::vector<c10::IValue>> forward_batch(std::vector<at::Tensor>& inputs);
  Result<Mask> probability_to_mask(const c10::IValue& output, const LetterboxGeometry& geometry,
                                   int source_width, int source_height) const;
  bool should_inject_oom();
  // The probe input on the device (probe_batch, warm_batches), from a host image made once: a
  // timed probe must time the forward pass, not the drawing of a 1024² test pattern.
  at::Tensor probe_input_once();
  // Note [First calls on one thread]: on a GPU, where the load made no pass, the module's first
  // two calls, once, by the first caller, while any others wait.
  void first_calls_once();

  torch::jit::Module module_;
  ModelManifest manifest_;
  ModelInfo info_;
  c10::Device device_;
  at::ScalarType dtype_;  // of the network input: kHalf on CUDA with fp16, else kFloat
  double inject_oom_rate_;
  StreamMode stream_mode_;
  DetectorDecodeOptions detector_options_;  // person_detector models only
  std::mutex random_mutex_;                 // guards random_
  std::mt19937_64 random_;
  std::once_flag probe_once_;
  RgbImage probe_image_;  // set under probe_once_
  std::once_flag first_calls_;
  bool own_thread_ = false;  // run_passes_on_own_thread(): set before any call, never cleared
  bool pad_ = false;         // pad_batches(): likewise
  // Null when every pass runs on its caller's thread. Last, so it stops (its thread calls
  // forward_batch) before the rest goes.
  std::unique_ptr<Batcher> batcher_;
};

}  // namespace segmentor
