#include "pipeline/engine.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "common/elapsed.h"
#include "pipeline/lane_picker.h"
#include "pipeline/mask_writer.h"

namespace segmentor {

namespace {

using SteadyClock = std::chrono::steady_clock;

}  // namespace

// Note [Worker threads for the GPU and for the codecs] (engine.h)
int default_worker_threads(int lanes, int max_concurrent) {
  const int slots = std::max(1, lanes) * std::max(1, max_concurrent);
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return slots + std::max(2, std::min(cores, slots));
}

Engine::Engine(EngineOptions options, std::vector<LaneView> lanes, ModelSet* cpu_fallback)
    : options_(std::move(options)), cpu_fallback_(cpu_fallback) {
  if (lanes.empty()) throw std::invalid_argument("Engine: no lanes");
  for (const LaneView& guarded : lanes) {
    if (guarded.lane == nullptr || guarded.gate == nullptr || guarded.recovery == nullptr) {
      throw std::invalid_argument("Engine: a lane without its model, gate or recovery ladder");
    }
    auto state = std::make_unique<LaneState>();
    state->guarded = guarded;
    lanes_.push_back(std::move(state));
  }
  const int lane_count = static_cast<int>(lanes_.size());
  const int threads = options_.worker_threads > 0
                          ? options_.worker_threads
                          : default_worker_threads(lane_count, options_.max_concurrent);
  workers_.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

Engine::Engine(EngineOptions options, ModelSet& primary, ModelSet* cpu_fallback,
               AdmissionGate& gate, OomRecovery& recovery, const CalibrationTable* calibration,
               CachePolicy* cache)
    : Engine(std::move(options), {LaneView{&primary, &gate, &recovery, calibration, cache}},
             cpu_fallback) {}

Engine::~Engine() {
  {
    std::unique_lock lock(queue_mutex_);
    idle_.wait(lock, [this] { return queue_.empty() && running_ == 0; });
    stopping_ = true;
  }
  queue_changed_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void Engine::submit(EngineTask task, Done done) {
  {
    std::lock_guard lock(queue_mutex_);
    queue_.push_back({std::move(task), std::move(done)});
  }
  queue_changed_.notify_one();
}

void Engine::wait_idle() {
  std::unique_lock lock(queue_mutex_);
  idle_.wait(lock, [this] { return queue_.empty() && running_ == 0; });
}

int Engine::queued() const {
  std::lock_guard lock(queue_mutex_);
  return static_cast<int>(queue_.size());
}

void Engine::worker_loop() {
  while (true) {
    Job job;
    {
      std::unique_lock lock(queue_mutex_);
      queue_changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    const TaskOutcome outcome = process_guarded(job.task);
    if (job.done) {
      try {
        job.done(job.task, outcome);
      } catch (const std::exception& e) {
        spdlog::error("task {}: its completion callback threw: {}", job.task.id, e.what());
      } catch (...) {
        spdlog::error("task {}: its completion callback threw", job.task.id);
      }
    }
    {
      std::lock_guard lock(queue_mutex_);
      --running_;
      if (queue_.empty() && running_ == 0) idle_.notify_all();
    }
  }
}

Result<AssetMasks> Engine::segment_on(ModelSet& lane, std::mutex* lane_mutex,
                                      const RgbImage& image) {
  Segmenter segmenter(*lane.foreground, lane.people.get(), lane.person_detector.get());
  if (lane_mutex != nullptr) {
    std::lock_guard lock(*lane_mutex);
    return segmenter.segment(image);
  }
  return segmenter.segment(image);
}

std::int64_t Engine::predict_bytes(const LaneState& lane, const RgbImage& image) const {
  const CalibrationTable* calibration = lane.guarded.calibration;
  if (calibration == nullptr || calibration->empty()) return 0;
  auto predicted = calibration->predict_task_bytes(image.width, image.height);
  return predicted.ok() ? *predicted : 0;
}

// Note [Picking a lane] (lane_picker.h).
Result<Engine::Admission> Engine::admit(const RgbImage& image) {
  std::vector<LaneLoad> loads;
  loads.reserve(lanes_.size());
  for (const auto& lane : lanes_) {
    loads.push_back(lane_load(lane->guarded.gate->stats(), predict_bytes(*lane, image)));
  }
  const std::vector<std::size_t> order = lane_preference(loads);
  for (const std::size_t index : order) {
    if (!loads[index].fits()) break;  // the order puts every lane it fits first
    LaneState& lane = *lanes_[index];
    if (auto ticket = lane.guarded.gate->try_admit(loads[index].task_bytes)) {
      return Admission{&lane, std::move(*ticket), loads[index].task_bytes};
    }
  }
  const std::size_t chosen = order.front();
  SEGMENTOR_ASSIGN_OR_RETURN(auto ticket,
                             lanes_[chosen]->guarded.gate->admit(loads[chosen].task_bytes));
  return Admission{lanes_[chosen].get(), std::move(ticket), loads[chosen].task_bytes};
}

// Note [Exceptions stop at the engine]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The models' adapters turn LibTorch's exceptions into Status, but a bug, a library we did not
// wrap or an allocation deep in the decoders can still throw. Uncaught on a worker or slot
// thread that is std::terminate — and with several replicas on one queue, the message that
// caused it is redelivered to the next replica, which dies in turn. So nothing thrown by a task
// leaves the engine: it becomes a failed TaskOutcome with `threw` set (the service treats it as
// permanent: the same input throws again), the task's ticket and cache accounting are released
// on the way out, and the callback runs as for any other failure.
TaskOutcome Engine::process_guarded(const EngineTask& task) {
  const auto start = SteadyClock::now();
  auto failed = [&](const std::string& what) {
    TaskOutcome outcome;
    outcome.threw = true;
    outcome.status = Status(ErrorCode::kInternal, "task " + task.id + " threw: " + what);
    outcome.total_seconds = seconds_since(start);
    spdlog::error("{}", outcome.status.message());
    return outcome;
  };
  try {
    return process(task);
  } catch (const std::bad_alloc&) {
    // Host memory: the ladder handles the device; on the host this is the input's size.
    return failed("out of host memory");
  } catch (const std::exception& e) {
    return failed(e.what());
  } catch (...) {
    return failed("an unknown exception");
  }
}

TaskOutcome Engine::process(const EngineTask& task) {
  TaskOutcome outcome;
  const auto start = SteadyClock::now();
  auto finish = [&](Status status) {
    outcome.status = std::move(status);
    outcome.total_seconds = seconds_since(start);
    return outcome;
  };

  auto paths = mask_paths_for(options_.layout, task.kind, task.id);
  if (!paths.ok()) return finish(paths.status().with_context(task.source.string()));
  outcome.paths = *paths;

  // Decode with no GPU memory held, so decoding overlaps other tasks' inference.
  auto t0 = SteadyClock::now();
  Result<RgbImage> decoded = Status(ErrorCode::kInternal, "not decoded");
  if (task.image) {
    decoded = *task.image;
  } else if (task.read) {
    auto bytes = task.read(options_.decode.read);
    decoded = bytes.ok() ? decode_image_bytes(*bytes, task.source.string(), options_.decode)
                         : Result<RgbImage>(bytes.status());
  } else {
    decoded = decode_image_file(task.source, options_.decode);
  }
  outcome.decode_seconds = seconds_since(t0);
  if (!decoded.ok()) return finish(decoded.status());
  const RgbImage& image = *decoded;
  outcome.width = image.width;
  outcome.height = image.height;

  // Note [Ticket across the ladder]
  // ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
  // The ticket is given back for each OOM back-off and taken again, at the head of the gate's
  // queue, before the retry. While a task sleeps its tensors are already freed, so holding its
  // bytes would only keep others out: with the gate shrunk to one task after an OOM, every
  // back-off (0.5 s and up) stalled the whole lane. At the head of the queue the retry still
  // goes before anything that arrived after it. The CPU fallback runs with the ticket held (the
  // task is still in flight, and the count stays honest).
  t0 = SteadyClock::now();
  auto admitted = admit(image);
  outcome.wait_seconds = seconds_since(t0);
  if (!admitted.ok()) return finish(admitted.status());
  LaneState& lane_state = *admitted->lane;
  ModelSet& lane = *lane_state.guarded.lane;
  AdmissionGate& gate = *lane_state.guarded.gate;
  CachePolicy* cache = lane_state.guarded.cache;
  AdmissionGate::Ticket* ticket = &admitted->ticket;
  outcome.predicted_bytes = admitted->predicted_bytes;

  t0 = SteadyClock::now();
  if (cache != nullptr) cache->on_task_started();
  std::mutex* lane_mutex = lane.serialize ? &lane_state.serial_mutex : nullptr;
  // Note [Where the time goes]: each attempt's model stages land here, from whichever thread
  // runs it (a slot thread, this one for a serial lane or the CPU fallback).
  StageTimes* model_stages = options_.stage_times ? &outcome.stages : nullptr;
  std::function<Result<AssetMasks>()> on_cpu;
  if (cpu_fallback_ != nullptr) {
    on_cpu = [&] {
      StageSink sink(model_stages);
      return segment_on(*cpu_fallback_, &fallback_mutex_, image);
    };
  }
  double readmit_wait_seconds = 0;  // counted as gate waiting, not as time on the lane
  LadderHooks hooks;
  hooks.before_backoff = [&] { ticket->release(); };
  hooks.after_backoff = [&]() -> Status {
    const auto waited_from = SteadyClock::now();
    auto again = gate.readmit(outcome.predicted_bytes);
    readmit_wait_seconds += seconds_since(waited_from);
    if (!again.ok()) return again.status();
    *ticket = std::move(*again);
    return Status::Ok();
  };
  auto on_gpu = [&]() -> Result<AssetMasks> {
    if (lane.serialize) {
      StageSink sink(model_stages);
      return segment_on(lane, lane_mutex, image);
    }
    // Note [GPU work runs on slot threads]
    std::optional<Result<AssetMasks>> masks;
    lane_state.slot_threads().run(ticket->slot(), [&] {
      StageSink sink(model_stages);
      masks.emplace(segment_on(lane, nullptr, image));
    });
    return std::move(*masks);
  };
  const int level = ticket->level();
  Result<AssetMasks> masks = Status(ErrorCode::kInternal, "not run");
  try {
    masks =
        lane_state.guarded.recovery->run_for<AssetMasks>(on_gpu, on_cpu, &outcome.recovery, hooks);
  } catch (...) {
    // Note [Exceptions stop at the engine]: settle the lane's accounting, then report it.
    if (cache != nullptr) cache->on_task_finished();
    ticket->release();
    throw;
  }
  if (cache != nullptr) cache->on_task_finished();
  ticket->release();
  outcome.segment_seconds = seconds_since(t0) - readmit_wait_seconds;
  // Note [Tuning concurrency by throughput]: only clean GPU runs say how fast a level is.
  if (lane_state.guarded.tuner != nullptr && masks.ok() && outcome.recovery.oom_events == 0 &&
      !outcome.recovery.used_cpu_fallback) {
    lane_state.guarded.tuner->on_task_done(level, outcome.segment_seconds);
  }
  outcome.wait_seconds += readmit_wait_seconds;
  outcome.lane = outcome.recovery.used_cpu_fallback ? cpu_fallback_->name : lane.name;
  if (!masks.ok()) return finish(masks.status().with_context(task.source.string()));
  outcome.people_found = masks->people_found;

  t0 = SteadyClock::now();
  if (options_.write_masks) {
    StageSink sink(options_.stage_times ? &outcome.stages : nullptr);
    Status written = write_masks(outcome.paths, *masks, options_.layout.data_root);
    if (written.ok() && options_.cutout_dir) {
      written = write_cutout(*options_.cutout_dir / (task.id + ".png"), image, masks->product);
    }
    if (!written.ok()) return finish(written);
  }
  outcome.write_seconds = seconds_since(t0);
  if (options_.stage_times) {
    outcome.stages[Stage::kDecode] = outcome.decode_seconds;
    outcome.stages[Stage::kGateWait] = outcome.wait_seconds;
  }
  return finish(Status::Ok());
}

}  // namespace segmentor
