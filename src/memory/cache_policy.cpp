#include "memory/cache_policy.h"

#include <memory>
#include <utility>

namespace segmentor {

std::string_view to_string(ReleaseReason reason) {
  switch (reason) {
    case ReleaseReason::kAfterOom: return "after_oom";
    case ReleaseReason::kPressure: return "pressure";
    case ReleaseReason::kIdle: return "idle";
    case ReleaseReason::kEveryN: return "every_n";
    case ReleaseReason::kManual: return "manual";
  }
  return "unknown";
}

Result<std::unique_ptr<CachePolicy>> CachePolicy::create(CachePolicyOptions options,
                                                         DeviceMemory* device) {
  if (device == nullptr) return invalid_argument("cache policy: no device");
  if (options.cleanup_every_n < 0) {
    return invalid_argument("cache policy: GPU_CLEANUP_EVERY_N must be >= 0, got " +
                            std::to_string(options.cleanup_every_n));
  }
  return std::unique_ptr<CachePolicy>(new CachePolicy(std::move(options), device));
}

CachePolicy::CachePolicy(CachePolicyOptions options, DeviceMemory* device)
    : options_(std::move(options)), device_(device), last_activity_(now()) {}

std::chrono::steady_clock::time_point CachePolicy::now() const {
  return options_.now ? options_.now() : std::chrono::steady_clock::now();
}

std::chrono::nanoseconds CachePolicy::release(ReleaseReason reason) {
  // Not under policy_mutex_: a release synchronizes the device and may take milliseconds.
  const std::chrono::nanoseconds took = device_->release_cache();
  std::lock_guard lock(policy_mutex_);
  ++stats_.releases_total;
  ++stats_.releases_by_reason[static_cast<std::size_t>(reason)];
  stats_.release_time_total += took;
  stats_.last_release_time = took;
  stats_.last_reason = reason;
  released_since_activity_ = true;
  return took;
}

void CachePolicy::on_task_started() {
  std::lock_guard lock(policy_mutex_);
  ++running_;
  last_activity_ = now();
  released_since_activity_ = false;
}

std::optional<ReleaseReason> CachePolicy::on_task_finished() {
  bool due = false;
  {
    std::lock_guard lock(policy_mutex_);
    if (running_ > 0) --running_;
    ++stats_.tasks_finished;
    last_activity_ = now();
    released_since_activity_ = false;
    due = options_.cleanup_every_n > 0 &&
          stats_.tasks_finished % static_cast<std::uint64_t>(options_.cleanup_every_n) == 0;
  }
  if (!due) return std::nullopt;
  release(ReleaseReason::kEveryN);
  return ReleaseReason::kEveryN;
}

std::chrono::nanoseconds CachePolicy::on_out_of_memory() {
  return release(ReleaseReason::kAfterOom);
}

std::chrono::nanoseconds CachePolicy::release_now() { return release(ReleaseReason::kManual); }

std::optional<ReleaseReason> CachePolicy::on_tick() {
  bool idle = false;
  {
    std::lock_guard lock(policy_mutex_);
    idle = options_.idle_after.count() > 0 && running_ == 0 && !released_since_activity_ &&
           now() - last_activity_ >= options_.idle_after;
  }
  if (idle) {
    release(ReleaseReason::kIdle);
    return ReleaseReason::kIdle;
  }
  if (options_.pressure_fraction > 0.0) {
    const MemorySnapshot s = device_->snapshot();
    const std::int64_t cached = s.reserved_bytes - s.allocated_bytes;
    const double unreserved = static_cast<double>(s.budget_bytes() - s.reserved_bytes);
    const double headroom = options_.pressure_fraction * static_cast<double>(s.budget_bytes());
    if (cached > 0 && unreserved < headroom) {
      release(ReleaseReason::kPressure);
      return ReleaseReason::kPressure;
    }
  }
  return std::nullopt;
}

CacheStats CachePolicy::stats() const {
  std::lock_guard lock(policy_mutex_);
  return stats_;
}

}  // namespace segmentor
