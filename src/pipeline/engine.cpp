#include "pipeline/engine.h"

#include <chrono>
#include <utility>

#include "pipeline/mask_writer.h"

namespace segmentor {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

Engine::Engine(EngineOptions options, Lane& primary, Lane* cpu_fallback, AdmissionGate& gate,
               OomRecovery& recovery, const CalibrationTable* calibration, CachePolicy* cache)
    : options_(std::move(options)),
      primary_(primary),
      cpu_fallback_(cpu_fallback),
      gate_(gate),
      recovery_(recovery),
      calibration_(calibration),
      cache_(cache) {
  const int threads =
      options_.worker_threads > 0 ? options_.worker_threads : options_.max_concurrent + 2;
  workers_.reserve(static_cast<std::size_t>(threads));
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { worker_loop(); });
}

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
    const TaskOutcome outcome = process(job.task);
    if (job.done) job.done(job.task, outcome);
    {
      std::lock_guard lock(queue_mutex_);
      --running_;
      if (queue_.empty() && running_ == 0) idle_.notify_all();
    }
  }
}

Result<AssetMasks> Engine::segment_on(Lane& lane, std::mutex* lane_mutex, const RgbImage& image) {
  Segmenter segmenter(*lane.foreground, lane.people.get());
  if (lane_mutex != nullptr) {
    std::lock_guard lock(*lane_mutex);
    return segmenter.segment(image);
  }
  return segmenter.segment(image);
}

TaskOutcome Engine::process(const EngineTask& task) {
  TaskOutcome outcome;
  const auto start = Clock::now();
  auto finish = [&](Status status) {
    outcome.status = std::move(status);
    outcome.total_seconds = seconds_since(start);
    return outcome;
  };

  auto paths = mask_paths_for(options_.layout, task.kind, task.id);
  if (!paths.ok()) return finish(paths.status().with_context(task.source.string()));
  outcome.paths = *paths;

  // Decode with no GPU memory held, so decoding overlaps other tasks' inference.
  auto t0 = Clock::now();
  Result<RgbImage> decoded =
      task.image ? Result<RgbImage>(*task.image) : decode_image_file(task.source, options_.decode);
  outcome.decode_seconds = seconds_since(t0);
  if (!decoded.ok()) return finish(decoded.status());
  const RgbImage& image = *decoded;
  outcome.width = image.width;
  outcome.height = image.height;

  if (calibration_ != nullptr && !calibration_->empty()) {
    auto predicted = calibration_->predict_task_bytes(image.width, image.height);
    if (predicted.ok()) outcome.predicted_bytes = *predicted;
  }

  // Note [Ticket across the ladder]
  // ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
  // The ticket is given back for each OOM back-off and taken again, at the head of the gate's
  // queue, before the retry. While a task sleeps its tensors are already freed, so holding its
  // bytes would only keep others out: with the gate shrunk to one task after an OOM, every
  // back-off (0.5 s and up) stalled the whole lane. At the head of the queue the retry still
  // goes before anything that arrived after it. The CPU fallback runs with the ticket held (the
  // task is still in flight, and the count stays honest).
  t0 = Clock::now();
  auto ticket = gate_.admit(outcome.predicted_bytes);
  outcome.wait_seconds = seconds_since(t0);
  if (!ticket.ok()) return finish(ticket.status());

  t0 = Clock::now();
  if (cache_ != nullptr) cache_->on_task_started();
  std::mutex* primary_mutex = primary_.serialize ? &primary_mutex_ : nullptr;
  std::function<Result<AssetMasks>()> on_cpu;
  if (cpu_fallback_ != nullptr) {
    on_cpu = [&] { return segment_on(*cpu_fallback_, &fallback_mutex_, image); };
  }
  double readmit_wait_seconds = 0;  // counted as gate waiting, not as time on the lane
  LadderHooks hooks;
  hooks.before_backoff = [&] { ticket->release(); };
  hooks.after_backoff = [&]() -> Status {
    const auto waited_from = Clock::now();
    auto again = gate_.readmit(outcome.predicted_bytes);
    readmit_wait_seconds += seconds_since(waited_from);
    if (!again.ok()) return again.status();
    *ticket = std::move(*again);
    return Status::Ok();
  };
  auto on_gpu = [&]() -> Result<AssetMasks> {
    if (primary_.serialize) return segment_on(primary_, primary_mutex, image);
    // Note [GPU work runs on slot threads]
    std::optional<Result<AssetMasks>> masks;
    slot_threads_.run(ticket->slot(), [&] { masks.emplace(segment_on(primary_, nullptr, image)); });
    return std::move(*masks);
  };
  auto masks = recovery_.run_for<AssetMasks>(on_gpu, on_cpu, &outcome.recovery, hooks);
  if (cache_ != nullptr) cache_->on_task_finished();
  ticket->release();
  outcome.segment_seconds = seconds_since(t0) - readmit_wait_seconds;
  outcome.wait_seconds += readmit_wait_seconds;
  outcome.lane = outcome.recovery.used_cpu_fallback ? cpu_fallback_->name : primary_.name;
  if (!masks.ok()) return finish(masks.status().with_context(task.source.string()));
  outcome.people_found = masks->people_found;

  t0 = Clock::now();
  if (options_.write_masks) {
    Status written = write_masks(outcome.paths, *masks);
    if (written.ok() && options_.cutout_dir) {
      written = write_cutout(*options_.cutout_dir / (task.id + ".png"), image, masks->product);
    }
    if (!written.ok()) return finish(written);
  }
  outcome.write_seconds = seconds_since(t0);
  return finish(Status::Ok());
}

}  // namespace segmentor
