#include "runtime/slot_warmup.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/elapsed.h"
#include "imaging/image.h"

namespace segmentor {

namespace {

// An HD frame: the size class most tasks have. The networks run at their manifest's fixed input
// size whatever the source, so one source size warms every convolution; the resizes before and
// after are shape-generic kernels.
constexpr int kWarmWidth = 1280;
constexpr int kWarmHeight = 720;

RgbImage warm_frame() {
  RgbImage image;
  image.width = kWarmWidth;
  image.height = kWarmHeight;
  image.pixels.resize(image.pixel_count() * 3);
  for (std::size_t i = 0; i < image.pixels.size(); ++i) {
    image.pixels[i] = static_cast<std::uint8_t>((i * 7 + i / 3 * 13) & 0xff);  // texture, not flat
  }
  return image;
}

// Each model's calls on the slots: how many, and their summed seconds.
class CallTimes {
 public:
  void add(const std::string& model, double seconds) {
    std::lock_guard lock(mutex_);
    auto& [calls, total] = times_[model];
    ++calls;
    total += seconds;
  }
  std::map<std::string, double> means() const {
    std::lock_guard lock(mutex_);
    std::map<std::string, double> out;
    for (const auto& [model, times] : times_) out[model] = times.second / times.first;
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::pair<int, double>> times_;
};

// Every model of the set once, each call timed; the number of calls that failed.
int call_every_model(const ModelSet& models, const RgbImage& frame, int slot, CallTimes& times) {
  int failures = 0;
  for (MaskModel* model : models.models()) {
    const auto start = std::chrono::steady_clock::now();
    Result<Mask> mask = model->segment(frame);
    times.add(model->info().name, seconds_since(start));
    if (!mask.ok()) {
      ++failures;
      spdlog::warn("warming slot {} of {}: {}", slot, models.name, mask.status().to_string());
    }
  }
  return failures;
}

// Calls warm_batches on each model, one after another or side by side; logs and counts failures.
class BatchWarmer {
 public:
  explicit BatchWarmer(const std::string& lane) : lane_(lane) {}

  void warm(MaskModel* model, int up_to) {
    Status warmed;
    try {
      warmed = model->warm_batches(std::min(up_to, model->max_batch()));
    } catch (const std::exception& e) {
      warmed = Status(ErrorCode::kInternal, e.what());
    }
    if (!warmed.ok()) {
      ++failures_;
      spdlog::warn("warming batches of {} on {}: {}", model->info().name, lane_,
                   warmed.to_string());
    }
  }

  // `models` with `tickets` between them: side by side where each gets two or more (a batch of
  // two at least), else one after another with every ticket. The largest batch warmed.
  int warm_sharing(const std::vector<MaskModel*>& models, int tickets) {
    const int count = static_cast<int>(models.size());
    if (count == 0) return 0;
    if (count == 1 || tickets / count < 2) {
      int largest = 0;
      for (MaskModel* model : models) {
        warm(model, tickets);
        largest = std::max(largest, std::min(tickets, model->max_batch()));
      }
      return largest;
    }
    std::vector<int> shares;
    int left = tickets, largest = 0;
    for (int i = 0; i < count; ++i) {
      shares.push_back(std::min(models[i]->max_batch(), left / (count - i)));
      left -= shares.back();
      largest = std::max(largest, shares.back());
    }
    std::vector<std::thread> warmers;
    warmers.reserve(models.size());
    for (int i = 0; i < count; ++i) {
      warmers.emplace_back([this, model = models[i], share = shares[i]] { warm(model, share); });
    }
    for (std::thread& warmer : warmers) warmer.join();
    return largest;
  }

  int failures() const { return failures_.load(); }

 private:
  const std::string& lane_;
  std::atomic<int> failures_{0};
};

// Every batch size of every model whose passes run on a thread of its own (batched, or kept
// there at batch 1), on that thread, under tickets for as many tasks as its largest batch holds
// (as many as the gate admits now, at most). The models are warmed side by side, each under
// tickets of its own: in service a batch of one model runs beside a batch of another, each task
// holding its own ticket. The models with one shape to warm (kept at batch 1, or padded) take one
// ticket between them, one after another, beside the batched ones, which share the rest; where the
// gate admits too few for that, everything runs one model after another with every ticket. The
// number of calls that failed.
int warm_batch_sizes(DeviceLane& lane, std::int64_t predicted, WarmupReport& report) {
  std::vector<MaskModel*> batched, single;
  int wanted = 0;
  for (MaskModel* model : lane.lane->models()) {
    if (!model->passes_on_own_thread()) continue;
    // A padded model runs one shape, within one task's bytes (Note [Flat batches run padded]).
    const bool one_pass = model->max_batch() < 2 || model->pads_batches();
    (one_pass ? single : batched).push_back(model);
    wanted += one_pass ? 1 : model->max_batch();
  }
  if (batched.empty() && single.empty()) return 0;
  std::vector<AdmissionGate::Ticket> tickets;
  while (static_cast<int>(tickets.size()) < wanted) {
    std::optional<AdmissionGate::Ticket> ticket = lane.gate->try_admit(predicted);
    if (!ticket) break;
    tickets.push_back(std::move(*ticket));
  }
  const int held = static_cast<int>(tickets.size());
  BatchWarmer warmer(lane.lane->name);
  auto warm_single = [&] {
    for (MaskModel* model : single) warmer.warm(model, 1);
  };
  if (!single.empty() && !batched.empty() && held >= 3) {
    std::thread beside(warm_single);
    report.batch_size = warmer.warm_sharing(batched, held - 1);
    beside.join();
  } else {
    report.batch_size = warmer.warm_sharing(batched, held);
    warm_single();
    if (!single.empty()) report.batch_size = std::max(report.batch_size, 1);
  }
  return warmer.failures();
}

}  // namespace

WarmupReport warm_slots(DeviceLane& lane, int slots) {
  WarmupReport report;
  if (lane.lane == nullptr || lane.lane->serialize || lane.gate == nullptr || slots <= 0) {
    return report;
  }
  const auto start = std::chrono::steady_clock::now();
  const std::int64_t retries_before =
      lane.device != nullptr ? lane.device->snapshot().num_alloc_retries : 0;
  const RgbImage frame = warm_frame();
  std::int64_t predicted = 0;
  if (!lane.calibration.empty()) {
    auto bytes = lane.calibration.predict_task_bytes(frame.width, frame.height);
    if (bytes.ok()) predicted = *bytes;
  }
  // The batch sizes first: in the slots' warm-up below the concurrent calls of a batched model
  // form batches of whatever size, which should then all have run once.
  try {
    report.failures += warm_batch_sizes(lane, predicted, report);
  } catch (const std::exception& e) {
    ++report.failures;
    spdlog::warn("warming batches on {}: {}", lane.name(), e.what());
  }
  report.batch_seconds = seconds_since(start);

  const auto slots_start = std::chrono::steady_clock::now();
  std::atomic<int> warmed{0}, failures{0};
  std::once_flag first_done;
  CallTimes times;
  std::vector<std::thread> callers;
  callers.reserve(static_cast<std::size_t>(slots));
  for (int i = 0; i < slots; ++i) {
    callers.emplace_back([&] {
      try {
        Result<AdmissionGate::Ticket> ticket = lane.gate->admit(predicted);
        if (!ticket.ok()) {
          ++failures;
          spdlog::warn("warming {}: {}", lane.name(), ticket.status().to_string());
          return;
        }
        const int slot = ticket->slot();
        int failed = 0;
        lane.slot_threads->run(slot,
                               [&] { failed = call_every_model(*lane.lane, frame, slot, times); });
        failures += failed;
        if (failed == 0) {
          ++warmed;
          std::call_once(first_done,
                         [&] { report.first_slot_seconds = seconds_since(slots_start); });
        }
      } catch (const std::exception& e) {  // a model that throws is the tasks' problem, later
        ++failures;
        spdlog::warn("warming {}: {}", lane.name(), e.what());
      }
    });
  }
  for (auto& caller : callers) caller.join();
  report.slots = warmed.load();
  report.failures += failures.load();
  report.mean_call_seconds = times.means();
  if (lane.device != nullptr) {
    const MemorySnapshot after = lane.device->snapshot();
    report.alloc_retries = after.num_alloc_retries - retries_before;
    report.reserved_bytes_after = after.reserved_bytes;
  }
  report.seconds = seconds_since(start);
  return report;
}

}  // namespace segmentor
