#include "pipeline/calibrate.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "common/elapsed.h"

namespace segmentor {

namespace {

// A grey image with a bright block, so models do real work (an all-zero input can take short
// cuts in some operators).
RgbImage reference_image(int width, int height) {
  RgbImage image{width, height,
                 std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3, 96)};
  for (int y = height / 4; y < height * 3 / 4; ++y) {
    for (int x = width / 4; x < width * 3 / 4; ++x) {
      const auto i = (static_cast<std::size_t>(y) * width + x) * 3;
      image.pixels[i] = 230;
    }
  }
  return image;
}

// See Note [Calibrate reserved, not only allocated]: the measured task runs where a worker's
// first task would, on a thread (so, with CUDA_STREAMS=worker, a stream) of its own.
Result<AssetMasks> segment_on_a_fresh_thread(Segmenter& segmenter, const RgbImage& image) {
  std::optional<Result<AssetMasks>> result;
  std::thread([&] { result.emplace(segmenter.segment(image)); }).join();
  return std::move(*result);
}

}  // namespace

// Note [Calibrate reserved, not only allocated]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The allocator serves a task from blocks it reserves from the driver: whole segments, rounded
// up, and cached per CUDA stream once freed. A task on a fresh stream therefore holds its peak
// *reserved* growth, not its peak allocated bytes, and concurrent tasks on their own streams
// (CUDA_STREAMS=worker) each hold theirs. On the H100 with the production-sized stand-ins the
// allocated peak predicted 11 tasks in 8 GiB where 4 already hit out-of-memory errors
// (bench/RESULTS.md), so a task's bytes are the larger of the two growths, measured from an empty
// cache. A stream also carries allocations that outlive the task (LibTorch keeps a cuBLAS
// workspace per handle and stream, tens of MiB on Hopper): the measured task therefore runs on a
// fresh thread, as a worker's first task does, so those are counted too, while the warm-up runs
// on the calling thread to take lazy initialisation and autotuning out of the figure.
std::int64_t task_bytes(const MemorySnapshot& before, const MemorySnapshot& after) {
  const std::int64_t allocated = after.peak_allocated_bytes - before.allocated_bytes;
  const std::int64_t reserved = after.peak_reserved_bytes - before.reserved_bytes;
  return std::max<std::int64_t>({0, allocated, reserved});
}

void record_resident(CalibrationTable& table, const std::string& name,
                     std::int64_t allocated_before_load, std::int64_t allocated_after_load) {
  table.set_resident_bytes(name,
                           std::max<std::int64_t>(0, allocated_after_load - allocated_before_load));
}

Status calibrate_segmenter(Segmenter& segmenter, DeviceMemory& device, CalibrationTable& table,
                           const std::string& task_name) {
  // The reference images hold no person: without this the people model would not run.
  segmenter.set_always_run_people(true);
  struct Restore {
    Segmenter& segmenter;
    ~Restore() { segmenter.set_always_run_people(false); }
  } restore{segmenter};
  for (const ReferenceSize& size : reference_sizes()) {
    const RgbImage image = reference_image(size.width, size.height);
    auto warm = segmenter.segment(image);
    if (!warm.ok())
      return warm.status().with_context("calibration warm-up at " + std::to_string(size.width) +
                                        "x" + std::to_string(size.height));
    device.release_cache();
    const MemorySnapshot before = device.snapshot();
    device.reset_peak();
    auto measured = segment_on_a_fresh_thread(segmenter, image);
    if (!measured.ok())
      return measured.status().with_context("calibration at " + std::to_string(size.width) + "x" +
                                            std::to_string(size.height));
    const MemorySnapshot after = device.snapshot();
    table.add_measurement(task_name, size.width, size.height, task_bytes(before, after));
  }
  return Status::Ok();
}

namespace {

// One probe of `batch` inputs from an empty cache, on a fresh thread; its bytes as task_bytes.
Result<std::int64_t> measure_batch(MaskModel& model, DeviceMemory& device, int batch) {
  SEGMENTOR_RETURN_IF_ERROR(model.probe_batch(batch));  // warm-up: lazy set-up, autotuning
  device.release_cache();
  const MemorySnapshot before = device.snapshot();
  device.reset_peak();
  std::optional<Status> probed;
  std::thread([&] { probed.emplace(model.probe_batch(batch)); }).join();
  SEGMENTOR_RETURN_IF_ERROR(*probed);
  return task_bytes(before, device.snapshot());
}

// The best of three passes of `batch` inputs, in seconds (Note [A batch must pay for itself]).
Result<double> time_pass(MaskModel& model, int batch) {
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < 3; ++i) {
    const auto start = std::chrono::steady_clock::now();
    SEGMENTOR_RETURN_IF_ERROR(model.probe_batch(batch));
    best = std::min(best, seconds_since(start));
  }
  return best;
}

}  // namespace

Result<double> time_single_pass(MaskModel& model) {
  SEGMENTOR_RETURN_IF_ERROR(model.probe_batch(1));  // its first calls are not what is timed
  return time_pass(model, 1);
}

Result<double> time_first_call_on_new_thread(MaskModel& model) {
  std::optional<Status> probed;
  double seconds = 0;
  std::thread([&] {
    const auto start = std::chrono::steady_clock::now();
    probed.emplace(model.probe_batch(1));
    seconds = seconds_since(start);
  }).join();
  SEGMENTOR_RETURN_IF_ERROR(*probed);
  return seconds;
}

bool keeps_own_thread(double first_call_seconds, double share, int slots) {
  return first_call_seconds > kDearFirstCallSeconds && slots * share <= kMaxOwnThreadLoad;
}

// Note [Batch sizes within the reserved bytes] (calibrate.h).
Result<BatchCalibration> calibrate_batch_limit(MaskModel& model, DeviceMemory& device,
                                               double task_pass_seconds, std::int64_t task_bytes) {
  BatchCalibration result;
  const int cap = model.max_batch();
  if (cap <= 1) return result;
  SEGMENTOR_ASSIGN_OR_RETURN(const std::int64_t single, measure_batch(model, device, 1));
  result.peaks.emplace_back(1, single);
  int passed = 1;
  for (int batch = 2; passed < cap; batch = std::min(cap, batch * 2)) {
    auto bytes = measure_batch(model, device, batch);
    if (!bytes.ok()) {
      if (bytes.status().code() != ErrorCode::kOutOfMemory) return bytes.status();
      break;  // this batch does not fit the card at all
    }
    result.peaks.emplace_back(batch, *bytes);
    if (*bytes > static_cast<std::int64_t>(batch) * std::max(single, task_bytes)) break;
    passed = batch;
  }
  if (passed > 1) {
    double batch_one_seconds = 0;
    for (const auto& [batch, bytes] : result.peaks) {
      if (batch > passed) break;
      SEGMENTOR_ASSIGN_OR_RETURN(const double seconds, time_pass(model, batch));
      result.pass_seconds.emplace_back(batch, seconds);
      if (batch == 1) batch_one_seconds = seconds;
      if (seconds > 0 && batch_one_seconds > 0) {
        result.speedup = std::max(result.speedup, batch * batch_one_seconds / seconds);
      }
    }
    // Note [A batch must pay for itself]: the share of a task's GPU time this model's passes
    // take bounds what batching them can give the lane.
    if (task_pass_seconds > 0 && batch_one_seconds > 0) {
      result.share = std::min(1.0, batch_one_seconds / task_pass_seconds);
    }
    result.gain = result.share * (1.0 - 1.0 / result.speedup);
    result.pays = result.speedup >= kMinBatchSpeedup && result.gain >= kMinBatchGain;
    if (!result.pays) passed = 1;
  }
  device.release_cache();
  result.limit = passed;
  model.limit_batch(passed);
  // Note [Flat batches run padded]: only a limit that was both timed and measured qualifies.
  if (passed > 1) {
    const auto timed = [&](int batch) {
      const auto it = std::ranges::find(result.pass_seconds, batch, &std::pair<int, double>::first);
      return it != result.pass_seconds.end() ? it->second : 0.0;
    };
    const auto peak = std::ranges::find(result.peaks, passed, &std::pair<int, std::int64_t>::first);
    const double at_one = timed(1), at_limit = timed(passed);
    const double task_seconds = task_pass_seconds > 0 ? task_pass_seconds : at_one;
    result.padded = at_one > 0 && at_limit > 0 &&
                    at_limit - at_one <= kMaxPaddingCost * task_seconds &&
                    peak != result.peaks.end() && peak->second <= std::max(single, task_bytes);
    if (result.padded) model.pad_batches();
  }
  return result;
}

}  // namespace segmentor
