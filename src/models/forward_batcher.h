// ForwardBatcher: runs the forward passes that concurrent tasks ask of one model as batches, on
// one thread of its own. Torch-free (a template over the input and output types) so that its
// queueing, error and splitting rules are tested without a network.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"
#include "models/mask_model.h"  // BatchStats

namespace segmentor {

// Note [Batching admitted tasks]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Light models (IS-Net, the selfie model, NanoDet) are fastest per frame at batch 8 and slow at
// batch 1 (`bench --ceiling`): one task per forward pass leaves most of the card idle. The gate
// still admits tasks one by one, by their calibrated bytes; batching only groups the forward
// passes of tasks it already admitted:
//
// - Each task prepares its own input (upload, resize, normalise: models/image_tensor.h), which
//   has the model's fixed input size, and hands it here. One thread per batched model takes
//   whatever inputs are waiting, up to the batch cap, stacks them, runs ONE forward pass and gives
//   each caller its own slice of the output; each caller then post-processes its slice (resample
//   to its source size, threshold, copy back) on its own slot thread, as before.
// - Before each batch the thread waits a little for tasks still preparing their input for this
//   model (a Preparing token not yet submitted): until none is left, or the batch is full, and
//   never longer than `max_wait`. Nobody preparing, no wait: a lone task pays nothing. While a
//   batch runs, inputs pile up and the next batch takes them all, so batches grow with the load.
// - Memory: a batch holds tasks the gate admitted, so it may use what the gate reserved for them;
//   the lane's calibration caps the batch size where batch k's peak would exceed k times batch
//   1's (Note [Batch sizes within the reserved bytes], pipeline/calibrate.h). All batches of a
//   model run on its one thread, hence (CUDA_STREAMS=worker) one stream: the allocator caches the
//   batch's blocks once, not once per slot that happened to lead a batch.
// - Errors: a batch that fails is run again one input at a time, so an input that cannot run
//   fails alone, with its own error (an out-of-memory stays kOutOfMemory, for the task's recovery
//   ladder), and the others still get their results: no frame is lost to a neighbour. After an
//   out-of-memory error the batch cap halves, and grows back by one after
//   kBatchesPerCapIncrease clean batches (the gate's AIMD in miniature).
// - A model whose graph bakes in batch 1 is found at load time (batch 2 must give what two batch-1
//   runs give) and never gets a batcher; MAX_MODEL_BATCH=1 or a manifest's "batchable": false do
//   the same. Without a batcher a task runs its forward pass itself, exactly as before.

inline constexpr int kBatchesPerCapIncrease = 16;
inline constexpr std::chrono::microseconds kDefaultBatchWait{2000};

struct ForwardBatcherOptions {
  int max_batch = 8;  // >= 1
  // The longest an idle batcher waits for tasks still preparing their input.
  std::chrono::microseconds max_wait = kDefaultBatchWait;
};

// Thread-safe. Owns its thread, which runs `run_batch`; the destructor finishes queued work first.
// `run_batch` gets 1..max_batch inputs and returns one output per input, in order, or an error for
// the whole batch; it must not throw.
template <typename Input, typename Output>
class ForwardBatcher {
 public:
  using RunBatch = std::function<Result<std::vector<Output>>(std::vector<Input>&)>;

  ForwardBatcher(ForwardBatcherOptions options, RunBatch run_batch)
      : options_(sanitize(options)),
        run_batch_(std::move(run_batch)),
        limit_(options_.max_batch),
        cap_(options_.max_batch) {
    thread_ = std::thread([this] { loop(); });
  }
  ~ForwardBatcher() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  ForwardBatcher(const ForwardBatcher&) = delete;
  ForwardBatcher& operator=(const ForwardBatcher&) = delete;

  // A task that will submit soon: an idle batcher waits for it (up to max_wait). Ends at submit()
  // or when destroyed, whichever is first.
  class Preparing {
   public:
    explicit Preparing(ForwardBatcher& batcher) : batcher_(&batcher) {
      std::lock_guard lock(batcher_->mutex_);
      ++batcher_->preparing_;
    }
    ~Preparing() { end(); }
    Preparing(const Preparing&) = delete;
    Preparing& operator=(const Preparing&) = delete;
    void end() {
      if (batcher_ == nullptr) return;
      {
        std::lock_guard lock(batcher_->mutex_);
        --batcher_->preparing_;
      }
      batcher_->changed_.notify_all();
      batcher_ = nullptr;
    }

   private:
    friend class ForwardBatcher;
    ForwardBatcher* batcher_;
  };

  // Queues every input at once, so an idle batcher runs them as one batch (split by the cap when
  // there are more), and waits for all their outputs, in order. For warming a batch size
  // (Note [Warm every slot before ready], runtime/slot_warmup.h).
  std::vector<Result<Output>> submit_together(std::vector<Input> inputs) {
    std::vector<Request> requests;
    requests.reserve(inputs.size());
    for (Input& input : inputs) requests.push_back(Request{std::move(input)});
    std::vector<Result<Output>> outputs;
    {
      std::unique_lock lock(mutex_);
      if (stopping_) {
        outputs.assign(requests.size(), internal_error("a model's batcher is shutting down"));
        return outputs;
      }
      for (Request& request : requests) queue_.push_back(&request);
      changed_.notify_all();
      done_.wait(lock, [&] {
        return std::all_of(requests.begin(), requests.end(),
                           [](const Request& r) { return r.result.has_value(); });
      });
    }
    outputs.reserve(requests.size());
    for (Request& request : requests) outputs.push_back(std::move(*request.result));
    return outputs;
  }

  // Runs `input` in the next batch and waits for its output. `preparing` (may be null) is ended
  // here, as the input joins the queue.
  Result<Output> submit(Input input, Preparing* preparing = nullptr) {
    Request request{std::move(input)};
    {
      std::unique_lock lock(mutex_);
      if (stopping_) return internal_error("a model's batcher is shutting down");
      queue_.push_back(&request);
      if (preparing != nullptr && preparing->batcher_ == this) {  // end it under this lock
        preparing->batcher_ = nullptr;
        --preparing_;
      }
      changed_.notify_all();
      done_.wait(lock, [&] { return request.result.has_value(); });
    }
    return std::move(*request.result);
  }

  int max_batch() const {
    std::lock_guard lock(mutex_);
    return limit_;
  }
  // Lowers the largest batch to `max_batch` (at least 1); never raises it.
  void limit(int max_batch) {
    std::lock_guard lock(mutex_);
    limit_ = std::clamp(max_batch, 1, limit_);
    cap_ = std::min(cap_, limit_);
  }
  BatchStats stats() const {
    std::lock_guard lock(mutex_);
    BatchStats out = stats_;
    out.cap = cap_;
    return out;
  }

 private:
  struct Request {
    Input input;
    std::optional<Result<Output>> result{};
  };

  static ForwardBatcherOptions sanitize(ForwardBatcherOptions options) {
    options.max_batch = std::max(1, options.max_batch);
    options.max_wait = std::max(std::chrono::microseconds(0), options.max_wait);
    return options;
  }

  void loop() {
    std::unique_lock lock(mutex_);
    while (true) {
      changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping with nothing left
      // Wait for the tasks still preparing theirs (Note [Batching admitted tasks]).
      const auto deadline = std::chrono::steady_clock::now() + options_.max_wait;
      changed_.wait_until(lock, deadline, [&] {
        return stopping_ || preparing_ == 0 || static_cast<int>(queue_.size()) >= cap_;
      });
      std::vector<Request*> batch;
      while (!queue_.empty() && static_cast<int>(batch.size()) < cap_) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
      lock.unlock();
      run(batch);
      lock.lock();
      done_.notify_all();
    }
  }

  // Runs `batch` (outside the lock) and fills every request's result.
  void run(const std::vector<Request*>& batch) {
    Status failed = run_once(batch);
    if (failed.ok()) return;
    if (batch.size() == 1) {
      std::lock_guard lock(mutex_);
      batch.front()->result.emplace(std::move(failed));
      return;
    }
    // Note [Batching admitted tasks], errors: one input at a time.
    {
      std::lock_guard lock(mutex_);
      ++stats_.split_batches;
      if (failed.code() == ErrorCode::kOutOfMemory) {
        cap_ = std::max(1, static_cast<int>(batch.size()) / 2);
        clean_batches_ = 0;
      }
    }
    for (Request* request : batch) {
      Status alone = run_once({request});
      if (!alone.ok()) {
        std::lock_guard lock(mutex_);
        request->result.emplace(std::move(alone));
      }
    }
  }

  // One forward pass for `batch`: on success every request has its output; else the error.
  Status run_once(const std::vector<Request*>& batch) {
    std::vector<Input> inputs;
    inputs.reserve(batch.size());
    for (Request* request : batch) inputs.push_back(request->input);
    Result<std::vector<Output>> outputs = run_batch_(inputs);
    std::lock_guard lock(mutex_);
    ++stats_.batches;
    stats_.inputs += batch.size();
    stats_.largest = std::max(stats_.largest, static_cast<int>(batch.size()));
    if (outputs.ok() && outputs->size() != batch.size()) {
      outputs = internal_error("a batch of " + std::to_string(batch.size()) + " gave " +
                               std::to_string(outputs->size()) + " outputs");
    }
    if (!outputs.ok()) return outputs.status();
    for (std::size_t i = 0; i < batch.size(); ++i)
      batch[i]->result.emplace(std::move((*outputs)[i]));
    if (cap_ < limit_ && ++clean_batches_ >= kBatchesPerCapIncrease) {
      ++cap_;
      clean_batches_ = 0;
    }
    return Status::Ok();
  }

  const ForwardBatcherOptions options_;
  const RunBatch run_batch_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;  // queue_, preparing_, stopping_
  std::condition_variable done_;     // some request got its result
  std::deque<Request*> queue_;
  int preparing_ = 0;
  bool stopping_ = false;
  int limit_;  // the largest batch allowed: max_batch, or less after limit()
  int cap_;    // the batch cap now, in [1, limit_]: halved by out-of-memory errors
  int clean_batches_ = 0;
  BatchStats stats_;
  std::thread thread_;
};

}  // namespace segmentor
