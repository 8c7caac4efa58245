// Calibration: measures, on the device in hand, the bytes one task needs at each reference source
// size, so the admission gate can admit by measured bytes (DESIGN § Memory management, 1).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "memory/calibration.h"
#include "memory/device_memory.h"
#include "pipeline/segmenter.h"

namespace segmentor {

// Resident weight bytes are what the allocator held after loading, before any task:
// `allocated_after_load - allocated_before_load`, recorded under `name`.
void record_resident(CalibrationTable& table, const std::string& name,
                     std::int64_t allocated_before_load, std::int64_t allocated_after_load);

// For each reference size (calibration.h), with every model of the segmenter running (the people
// model even where the detector finds nobody: the worst case): one warm-up (so lazy initialisation
// and cuDNN autotuning are not counted), then the cache released, peak stats reset, one measured
// task. Records task_bytes() as the whole segmenter's bytes, under `task_name`. Out-of-memory
// during calibration is an error: the card cannot run one task.
Status calibrate_segmenter(Segmenter& segmenter, DeviceMemory& device, CalibrationTable& table,
                           const std::string& task_name = "task");

// Note [Batch sizes within the reserved bytes]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The gate reserves each admitted task's calibrated bytes, measured with every model at batch 1.
// A batch of k admitted tasks runs one forward pass of k inputs instead of k passes of one
// (Note [Batching admitted tasks], models/forward_batcher.h); activations grow with k, but
// workspaces and the algorithms cuDNN picks may not grow in proportion. The batch may use what
// the gate reserved for its k tasks, so each batched model is measured at batch 1, 2, 4, ... up
// to its cap, each pass from an empty cache on a fresh thread (as calibrate_segmenter measures):
// the largest k whose peak is at most k × the bytes one task may use in it, with every smaller k
// measured passing too, is the model's batch limit. An out-of-memory error at some k stops there.
// Batch sizes between measured powers of two are allowed when both neighbours passed: peaks grow
// with k.
//
// What one task may use in a batch is the larger of the model's own batch-1 peak and the bytes
// the gate reserves for the smallest task. A task runs its models one after another, and its
// ticket covers the largest of them; while it waits in a light model's batch, it holds only its
// input and the masks so far. Bounding by the light model's own batch-1 peak alone took the
// allocator's rounding for growth: the selfie model needed 4 MiB at batch 1 and 26 MiB at batch 2
// (the caching allocator serves requests of 1-10 MiB from 20 MiB segments), so it never batched,
// though each task reserved hundreds of MiB (bench/RESULTS.md, ninth session).

// Note [A batch must pay for itself]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Batching trades concurrency for width: a batched model runs one pass at a time on its batcher's
// thread and stream, where unbatched tasks run their passes side by side on their slots' streams,
// which the GPU overlaps. A light model leaves most of the GPU idle at batch 1, so one pass of 8
// does far more per second than 8 overlapping passes of 1 (IS-Net medium on an H200, 2026-11-30:
// 143 frames/s alone at batch 1, 278 at batch 8; 197 frames/s unbatched at 4 tasks against 235
// batched at 16). A heavy one fills the GPU already: the RMBG-2.0 stand-in ran 54 frames/s at
// batch 1 and 63 at batch 4 (1.17×), and batched it fell from 59 to 46 frames/s end to end,
// because 4 overlapping passes of 1 had done as well as one pass of 4 and batching took that
// overlap away. So after the memory check, each batch size that passed is timed on one thread
// (the best of three passes, after the measuring pass warmed it) and the model batches only if
// its best frames per second reach kMinBatchSpeedup × batch 1's. 1.5, because the stand-in's
// 1.22–1.41× (three calibrations) still lost with batches: 48.7 against 59.5 frames/s at 4
// admitted; at 8 admitted, batched up to 8, it reached 57.0, about what 4 unbatched do.
//
// That is not enough on a lane with a heavy model beside a light one. The YOLO-seg stand-in runs
// 1.8× faster at batch 4 than at 1, yet batching it beside the RMBG-2.0 stand-in took the lane
// from 59.6 to 48.6 frames/s (H200, cap 8 GiB, 2026-11-30): its batches stayed near 1 (tasks
// reach it one by one, spaced by the heavy model's passes), and its passes, queued behind the
// heavy kernels on one stream, were waited for one at a time. What batching a model can give the
// lane is bounded by the share of a task's GPU time its passes take: gain = share × (1 − 1 /
// speedup), the share being its batch-1 pass time over the sum of every model's on the lane. So
// a model batches only where that bound is at least kMinBatchGain as well; otherwise its limit is
// 1 and its passes run on the slots' threads side by side. IS-Net medium beside the bundled
// detector: share ~0.75, speedup 2.1, gain ~0.4; the YOLO-seg stand-in: share 0.07, gain 0.03.
inline constexpr double kMinBatchSpeedup = 1.5;
inline constexpr double kMinBatchGain = 0.10;

// Note [Flat batches run padded]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Each batch size is a new input shape, and cuDNN builds plans per shape: the warm-up runs every
// size once (Note [Warm every slot before ready]), so a task's first batch of a size does not pay
// that. For the selfie model those plans cost ~0.9 s a size, 7 s of a 16-slot warm-up, while its
// pass took about as long at every size (4.9 ms at 1, 5.6 ms at 8: its kernels are too small to
// fill the GPU; H200, 2026-11-30, bench/RESULTS.md, ninth session). Such a model gains nothing
// from running a batch of 3 as 3: it runs every batch padded to its limit (the missing inputs
// are copies of the first, their outputs dropped), so it has one shape to warm.
//
// What padding can cost is the most a lone task pays for it: one input run as a full batch,
// pass(limit) − pass(1) more GPU time. Calibration pads where that is at most kMaxPaddingCost of
// a task's GPU time (the sum of the lane's single passes; the model's own pass when it is alone),
// and where the full batch needs no more than one task may use (Note [Batch sizes within the
// reserved bytes]): a padded batch then stays within what even one of its tasks reserved. A first
// rule compared the pass at the limit with the model's own pass at 1 (≤ 1.25×); the next
// calibration of the selfie model timed 3.7 ms at 1 and 4.8 ms at 8 (1.30×), so it was not padded
// and a 16-slot restart still warmed eight shapes, though padding a lone task cost it 1.1 ms of a
// 12 ms task (bench/RESULTS.md, tenth session). IS-Net (7.4 ms at 1, 29.1 ms at 8, most of a
// task's GPU time) is not padded. Under load batches fill, and padding costs nothing.
inline constexpr double kMaxPaddingCost = 0.25;

struct BatchCalibration {
  int limit = 1;
  std::vector<std::pair<int, std::int64_t>> peaks;   // (batch, bytes), as measured
  std::vector<std::pair<int, double>> pass_seconds;  // (batch, seconds per pass), as timed
  double speedup = 1;  // the best batch's frames per second over batch 1's (1 when not timed)
  double share = 1;    // its batch-1 pass over a task's passes on the lane (1: not given)
  double gain = 0;     // share × (1 − 1 / speedup): at most what batching gives the lane
  bool pays = true;    // speedup and gain reach their minimums (or nothing passed the memory check)
  bool padded = false;  // every batch runs padded to the limit (Note [Flat batches run padded])
};

// One pass of one synthetic input, in seconds (the best of three, after one untimed): what a
// model's pass costs a task, for the shares of Note [A batch must pay for itself].
Result<double> time_single_pass(MaskModel& model);

// Note [Dear first calls on a new thread]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A model whose passes run on the slots' threads (unbatched: Note [A batch must pay for itself])
// makes a first call on each of them, and each pays for what LibTorch keeps per thread. For most
// models that is little, but cuDNN's execution plans are cached per thread, and building them can
// be dear: on the H200 (LibTorch 2.11, cuDNN 9.19, fp16, 2026-11-30) the bundled selfie model's
// first call on a new thread took 0.84-1.8 s, and 8 new threads calling it at once took 7.1 s,
// one after another (the threads built their plans in turn), against 0.05-0.1 s for NanoDet and
// a few ms with cuDNN's older API or without cuDNN (bench/thread_first_calls.py). That was the slot
// warm-up's ~1 s per slot (16 slots: 15-17 s before ready; bench/RESULTS.md, eighth and ninth
// sessions). So, after the batch limits, each model left unbatched on a GPU lane makes one timed
// call on a new thread, and where that takes more than kDearFirstCallSeconds its passes may run
// on one thread of its own (its batcher's, one at a time): the plans are built once.
//
// One thread must then keep up with every slot: each task makes one pass of the model, `share` of
// the task's GPU time, and with S slots running tasks side by side it gets up to S passes in the
// time each slot runs one task. So the model moves only where S × share <= kMaxOwnThreadLoad. On
// the H200 with 16 slots, a person in every frame and the selfie model kept at batch 1 (share
// 0.22, load 3.5) on its own thread ran 149-154 frames/s against 204-210 on the slots' threads,
// though ready after 5.5 s instead of 20 s. Where it stays on the slots, the warm-up pays its first
// calls, as before. The verdict is kept with the calibration on disk (whose key holds the slot
// count).
inline constexpr double kDearFirstCallSeconds = 0.25;
inline constexpr double kMaxOwnThreadLoad = 1.0;

// One pass of one synthetic input on a thread that has never run one, in seconds.
Result<double> time_first_call_on_new_thread(MaskModel& model);

// Note [Dear first calls on a new thread]: whether a model's passes belong on a thread of their
// own. `share`: its single pass over a task's passes on the lane (1 when alone); `slots`: the
// lane's MAX_CONCURRENT_IMAGES.
bool keeps_own_thread(double first_call_seconds, double share, int slots);

// Measures `model`'s forward pass at batch 1..max_batch() on `device` (Note [Batch sizes within
// the reserved bytes]), times the sizes that fit (Note [A batch must pay for itself]), lowers
// its batch cap to the result and, where batches cost the same at every size, pads them (Note
// [Flat batches run padded]). A model that does not batch comes
// back with limit 1 and nothing measured. Errors only when batch 1 cannot run.
// `task_pass_seconds`: the sum of every lane model's time_single_pass, this one's included; 0
// (alone) counts this model as a task's whole GPU time. `task_bytes`: what the gate reserves for
// the smallest task (0: the model's own batch-1 peak bounds each task's share).
Result<BatchCalibration> calibrate_batch_limit(MaskModel& model, DeviceMemory& device,
                                               double task_pass_seconds = 0,
                                               std::int64_t task_bytes = 0);

// One task's bytes from snapshots taken before it (cache released) and after it (peaks since the
// reset): the larger of its peak allocated and peak reserved growth, never negative. See
// Note [Calibrate reserved, not only allocated] in calibrate.cpp.
std::int64_t task_bytes(const MemorySnapshot& before, const MemorySnapshot& after);

}  // namespace segmentor
