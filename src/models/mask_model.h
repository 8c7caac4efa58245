// The interface every segmentation model offers the pipeline. No LibTorch here: the pipeline,
// the memory manager and their tests see only this header.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "imaging/image.h"

namespace segmentor {

// What a model's output means (from its manifest's "kind").
enum class ModelKind {
  kForegroundProbability,  // [1,1,H,W] (or a tuple whose last element is) P(foreground)
  kPersonProbability,      // [1,1,H,W] P(person), thresholded like foreground
  kYoloSeg,                // ([1,4+nc+32,N] predictions, [1,32,h,w] prototypes)
  kPersonDetector,         // per stride: scores [1,N,nc], box bins [1,N,4*bins] (NanoDet);
                           // its "mask" is the union of its confident person boxes
};

// Inline so that code linking only segmentor_model_api (no LibTorch) can log a kind.
inline std::string_view to_string(ModelKind kind) {
  switch (kind) {
    case ModelKind::kForegroundProbability:
      return "foreground_probability";
    case ModelKind::kPersonProbability:
      return "person_probability";
    case ModelKind::kYoloSeg:
      return "yolo_seg";
    case ModelKind::kPersonDetector:
      return "person_detector";
  }
  return "unknown";
}

// What a model's load-time checks found on its device: whether freezing (and then
// optimize_for_inference) kept its output (Note [Freezing TorchScript modules]) and whether batch
// 2 gives what two single passes give (Note [Batching admitted tasks]). Each check runs probe
// forward passes, the slowest part of a load on a GPU, so the verdicts are kept on disk with the
// calibration and a restart with the same card, LibTorch, model file and settings trusts them
// (Note [Load checks on disk], memory/calibration_cache.h).
struct LoadChecks {
  bool frozen = false;          // freeze kept the output: load frozen
  bool optimized = false;       // optimize_for_inference kept it as well (only when frozen)
  std::optional<bool> batches;  // batch 2 matched; unset = not checked (unbatched settings)
  bool operator==(const LoadChecks& other) const = default;
};

// "frozen, optimised, batches" / "not frozen, batches unchecked": the verdicts in a log line.
std::string describe(const LoadChecks& checks);

struct ModelInfo {
  std::string name;  // manifest name, e.g. "isnet-medium" or "test-disc"
  std::string path;  // the TorchScript file it came from
  ModelKind kind = ModelKind::kForegroundProbability;
  int input_width = 0;  // the fixed size the network runs at
  int input_height = 0;
  std::string device;          // "cpu", "cuda:0"
  bool fp16 = false;           // weights and activations in half precision
  bool is_test_model = false;  // manifest says it is a toy for tests, not a real model
  // What the load-time checks found (or what the caller said they had found) and applied:
  // checks.frozen means torch::jit::freeze was applied.
  LoadChecks checks;
  // Where its load went (Note [A fast start] in runtime/runtime.cpp): reading the file onto the
  // device, the freeze check, the batch check; seconds. Logged by the lane, which has a logger.
  struct LoadSeconds {
    double read = 0, freeze_check = 0, batch_check = 0;
  } load_seconds;
  bool checks_known = false;  // the load trusted checks found earlier (ModelOptions::known_checks)
  bool checks_run = false;    // the load ran a probe pass of its own (freeze or batch check)
};

// What a model's batcher did (Note [Batching admitted tasks], models/forward_batcher.h): for
// `bench`'s mean batch size, and tests. All zero for a model that runs unbatched.
struct BatchStats {
  std::uint64_t batches = 0;        // forward passes run for callers (retries one by one included)
  std::uint64_t inputs = 0;         // inputs those passes carried
  std::uint64_t split_batches = 0;  // failed batches run again one input at a time
  int largest = 0;                  // the largest batch run
  int cap = 0;                      // the batch cap now
  double mean() const { return batches == 0 ? 0.0 : static_cast<double>(inputs) / batches; }
};

// A loaded model that turns an image into a mask of the image's own size.
// Thread-compatible: one instance serves one task at a time (the lane owns it).
class MaskModel {
 public:
  virtual ~MaskModel() = default;
  virtual const ModelInfo& info() const = 0;

  // A 0/255 mask of image.width x image.height. An empty result (no person found) is a mask of
  // zeros, never an error. Device out-of-memory comes back as ErrorCode::kOutOfMemory and is never
  // turned into "no mask".
  virtual Result<Mask> segment(const RgbImage& image) = 0;

  // Batching (Note [Batching admitted tasks], models/forward_batcher.h). Concurrent segment()
  // calls share forward passes of up to max_batch() inputs; 1 = every call runs its own.
  virtual int max_batch() const { return 1; }
  // Lowers the batch cap to `max_batch` (>= 1; never raises it): calibration's memory check.
  virtual void limit_batch(int /*max_batch*/) {}
  // One forward pass of `batch` synthetic inputs, for calibration (Note [Batch sizes within the
  // reserved bytes], pipeline/calibrate.h). Errors as segment(); kInvalidArgument where the model
  // cannot run one.
  virtual Status probe_batch(int /*batch*/) {
    return Status(ErrorCode::kInvalidArgument, info().name + ": cannot probe a batch");
  }
  virtual BatchStats batch_stats() const { return {}; }
  // Runs every forward pass on the thread that runs this model's batches, one pass at a time
  // where its batch cap is 1, instead of on its callers' threads: where each new thread's first
  // call is dear (Note [Dear first calls on a new thread], pipeline/calibrate.h). Called while
  // the lane is set up, before any task. Models that cannot do nothing.
  virtual void run_passes_on_own_thread() {}
  // Whether its passes run on its own thread: batched (max_batch() > 1), or kept there.
  virtual bool passes_on_own_thread() const { return max_batch() > 1; }
  // Runs every batch padded to max_batch() inputs, so it has one input shape: where a batch costs
  // the same at every size (Note [Flat batches run padded], pipeline/calibrate.h). Models that
  // cannot do nothing.
  virtual void pad_batches() {}
  virtual bool pads_batches() const { return false; }
  // One forward pass at every batch size from 1 to min(up_to, max_batch()), on the thread that
  // runs this model's batches, so a task's first batch of a new size does not pay that size's
  // first calls (Note [Warm every slot before ready], runtime/slot_warmup.h). The caller holds
  // the gate's tickets for `up_to` tasks. Errors as segment(); models whose passes run on their
  // callers' threads (passes_on_own_thread() false) do nothing.
  virtual Status warm_batches(int /*up_to*/) { return Status::Ok(); }
};

}  // namespace segmentor
