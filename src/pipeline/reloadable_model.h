// ReloadableModel: a MaskModel that can give its weights back when unused and load them again on
// the next call (MODEL_IDLE_UNLOAD_SECONDS).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "common/status.h"
#include "models/mask_model.h"

namespace segmentor {

// Note [Idle unload]
// ~~~~~~~~~~~~~~~~~~
// A model unused for MODEL_IDLE_UNLOAD_SECONDS is dropped, which frees its weights on the device
// once the last call holding it returns, and the hooks tell the admission gate (its resident
// bytes leave the budget arithmetic) and release the allocator's cache so the card gets the memory
// back. The next call loads it again through the loader, under the model's lock (other calls wait
// for that one load), and the hooks register the weights with the gate again. A reload runs inside
// a task that already holds a gate ticket; if the card has no room for the weights, the load fails
// with out-of-memory and that task goes through the recovery ladder like any other OOM. A call in
// progress keeps the model alive (shared ownership), so an unload never pulls weights out from
// under a running forward pass.

struct ReloadHooks {
  std::function<void()> after_unload;  // e.g. unregister from the gate, release the cache
  std::function<void()> after_load;    // a reload (not the first load): register with the gate
};

// Thread-safe: segment() may run concurrently, as for the wrapped model.
class ReloadableModel final : public MaskModel {
 public:
  using Loader = std::function<Result<std::unique_ptr<MaskModel>>()>;
  using NowFn = std::function<std::chrono::steady_clock::time_point()>;

  // `loaded` is the model as loaded at start-up (its info() is kept for when it is unloaded);
  // `loader` loads it again. `now` empty = steady_clock::now.
  ReloadableModel(std::unique_ptr<MaskModel> loaded, Loader loader, ReloadHooks hooks,
                  NowFn now = {});

  const ModelInfo& info() const override { return info_; }
  Result<Mask> segment(const RgbImage& image) override;

  // The loaded model's batching; a reload gets the limit set here again. While unloaded:
  // max_batch() is the last known one, probe_batch() fails, batch_stats() is empty.
  int max_batch() const override;
  void limit_batch(int max_batch) override;
  Status probe_batch(int batch) override;
  Status warm_batches(int up_to) override;  // nothing while unloaded
  // Kept for reloads, as the batch limit is. While unloaded: what was asked, with the last known
  // batch cap.
  void run_passes_on_own_thread() override;
  bool passes_on_own_thread() const override;
  void pad_batches() override;
  bool pads_batches() const override;
  BatchStats batch_stats() const override;

  // Unloads when loaded, no call is running, and the last call ended at least `idle` ago.
  // Returns whether it unloaded. For a periodic reaper.
  bool unload_if_idle(std::chrono::nanoseconds idle);

  bool loaded() const;
  std::uint64_t unloads() const;
  std::uint64_t reloads() const;

 private:
  std::chrono::steady_clock::time_point now() const;

  const ModelInfo info_;
  const Loader loader_;
  const ReloadHooks hooks_;
  const NowFn now_;

  mutable std::mutex mutex_;
  std::shared_ptr<MaskModel> model_;  // null while unloaded
  int running_ = 0;
  std::chrono::steady_clock::time_point last_used_;
  std::uint64_t unloads_ = 0;
  std::uint64_t reloads_ = 0;
  std::optional<int> batch_limit_;     // from limit_batch(), for reloads
  int max_batch_ = 1;                  // the model's, as last seen
  bool own_thread_ = false;            // from run_passes_on_own_thread(), for reloads
  bool pad_ = false;                   // from pad_batches(), for reloads
};

}  // namespace segmentor
