#include "pipeline/reloadable_model.h"

#include <algorithm>
#include <utility>

namespace segmentor {

ReloadableModel::ReloadableModel(std::unique_ptr<MaskModel> loaded, Loader loader,
                                 ReloadHooks hooks, NowFn now)
    : info_(loaded->info()),
      loader_(std::move(loader)),
      hooks_(std::move(hooks)),
      now_(std::move(now)),
      model_(std::move(loaded)),
      last_used_(this->now()),
      max_batch_(model_->max_batch()) {}

std::chrono::steady_clock::time_point ReloadableModel::now() const {
  return now_ ? now_() : std::chrono::steady_clock::now();
}

Result<Mask> ReloadableModel::segment(const RgbImage& image) {
  std::shared_ptr<MaskModel> model;
  {
    std::lock_guard lock(mutex_);
    if (!model_) {
      auto reloaded = loader_();
      if (!reloaded.ok()) return reloaded.status().with_context("reloading " + info_.name);
      model_ = std::move(reloaded).value();
      if (batch_limit_) model_->limit_batch(*batch_limit_);
      if (own_thread_) model_->run_passes_on_own_thread();
      if (pad_) model_->pad_batches();
      max_batch_ = model_->max_batch();
      ++reloads_;
      if (hooks_.after_load) hooks_.after_load();
    }
    model = model_;
    ++running_;
  }
  Result<Mask> mask = model->segment(image);
  std::lock_guard lock(mutex_);
  --running_;
  last_used_ = now();
  return mask;
}

bool ReloadableModel::unload_if_idle(std::chrono::nanoseconds idle) {
  // The hooks run under the lock, so an unload's and a reload's accounting cannot interleave.
  std::lock_guard lock(mutex_);
  if (!model_ || running_ > 0 || now() - last_used_ < idle) return false;
  model_.reset();  // no call holds it (running_ is 0): the weights go now
  ++unloads_;
  if (hooks_.after_unload) hooks_.after_unload();
  return true;
}

int ReloadableModel::max_batch() const {
  std::lock_guard lock(mutex_);
  return model_ ? model_->max_batch() : max_batch_;
}

void ReloadableModel::limit_batch(int max_batch) {
  std::lock_guard lock(mutex_);
  batch_limit_ = batch_limit_ ? std::min(*batch_limit_, max_batch) : max_batch;
  if (model_) {
    model_->limit_batch(*batch_limit_);
    max_batch_ = model_->max_batch();
  }
}

void ReloadableModel::run_passes_on_own_thread() {
  std::lock_guard lock(mutex_);
  own_thread_ = true;
  if (model_) model_->run_passes_on_own_thread();
}

void ReloadableModel::pad_batches() {
  std::lock_guard lock(mutex_);
  pad_ = true;
  if (model_) model_->pad_batches();
}

bool ReloadableModel::pads_batches() const {
  std::lock_guard lock(mutex_);
  return model_ ? model_->pads_batches() : pad_;
}

bool ReloadableModel::passes_on_own_thread() const {
  std::lock_guard lock(mutex_);
  return model_ ? model_->passes_on_own_thread() : own_thread_ || max_batch_ > 1;
}

Status ReloadableModel::probe_batch(int batch) {
  std::shared_ptr<MaskModel> model;
  {
    std::lock_guard lock(mutex_);
    model = model_;
  }
  if (!model) return invalid_argument(info_.name + " is unloaded: no batch probe");
  return model->probe_batch(batch);
}

Status ReloadableModel::warm_batches(int up_to) {
  std::shared_ptr<MaskModel> model;
  {
    std::lock_guard lock(mutex_);
    model = model_;
  }
  return model ? model->warm_batches(up_to) : Status::Ok();
}

BatchStats ReloadableModel::batch_stats() const {
  std::lock_guard lock(mutex_);
  return model_ ? model_->batch_stats() : BatchStats{};
}

bool ReloadableModel::loaded() const {
  std::lock_guard lock(mutex_);
  return model_ != nullptr;
}

std::uint64_t ReloadableModel::unloads() const {
  std::lock_guard lock(mutex_);
  return unloads_;
}

std::uint64_t ReloadableModel::reloads() const {
  std::lock_guard lock(mutex_);
  return reloads_;
}

}  // namespace segmentor
