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

// Every batch size of every batched model, each on its batcher's thread, under tickets for as
// many tasks as its largest batch holds (as many as the gate admits now, at most). The models
// are warmed side by side, each under tickets of its own: in service a batch of one model runs
// beside a batch of another, each task holding its own ticket. Where the gate admits too few for
// that, one model after another, with every ticket. The number of calls that failed.
int warm_batch_sizes(DeviceLane& lane, std::int64_t predicted, WarmupReport& report) {
  std::vector<MaskModel*> batched;
  int wanted = 0;
  for (MaskModel* model : lane.lane->models()) {
    if (model->max_batch() < 2) continue;
    batched.push_back(model);
    wanted += model->max_batch();
  }
  if (batched.empty()) return 0;
  std::vector<AdmissionGate::Ticket> tickets;
  while (static_cast<int>(tickets.size()) < wanted) {
    std::optional<AdmissionGate::Ticket> ticket = lane.gate->try_admit(predicted);
    if (!ticket) break;
    tickets.push_back(std::move(*ticket));
  }
  const int held = static_cast<int>(tickets.size());
  const int models = static_cast<int>(batched.size());
  const bool side_by_side = models > 1 && held / models >= 2;
  std::atomic<int> failures{0};
  auto warm = [&](MaskModel* model, int up_to) {
    Status warmed;
    try {
      warmed = model->warm_batches(std::min(up_to, model->max_batch()));
    } catch (const std::exception& e) {
      warmed = Status(ErrorCode::kInternal, e.what());
    }
    if (!warmed.ok()) {
      ++failures;
      spdlog::warn("warming batches of {} on {}: {}", model->info().name, lane.lane->name,
                   warmed.to_string());
    }
  };
  // Each model's tickets: all of them, one model after another, or a share, side by side. The
  // report is written here, before any thread starts.
  std::vector<int> shares(batched.size(), held);
  int left = held;
  for (std::size_t i = 0; i < batched.size(); ++i) {
    if (side_by_side) {
      shares[i] = std::min(batched[i]->max_batch(), left / (models - static_cast<int>(i)));
      left -= shares[i];
    }
    report.batch_size = std::max(report.batch_size, std::min(shares[i], batched[i]->max_batch()));
  }
  if (!side_by_side) {
    for (std::size_t i = 0; i < batched.size(); ++i) warm(batched[i], shares[i]);
    return failures.load();
  }
  std::vector<std::thread> warmers;
  warmers.reserve(batched.size());
  for (std::size_t i = 0; i < batched.size(); ++i) {
    warmers.emplace_back([&warm, model = batched[i], share = shares[i]] { warm(model, share); });
  }
  for (std::thread& warmer : warmers) warmer.join();
  return failures.load();
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
