// CacheTicker: calls CachePolicy::on_tick() on a thread of its own, so idle and pressure releases
// happen whether or not tasks are arriving.
#pragma once

#include <chrono>

#include "common/periodic_thread.h"
#include "memory/cache_policy.h"

namespace segmentor {

inline constexpr std::chrono::milliseconds kCacheTickInterval{1000};

// Starts ticking at construction; the destructor stops and joins. Does not own the policy, which
// must outlive it. A tick reads the device once (pressure) and may release the cache.
class CacheTicker {
 public:
  explicit CacheTicker(CachePolicy& policy,
                       std::chrono::milliseconds interval = kCacheTickInterval)
      : thread_([&policy] { (void)policy.on_tick(); }, interval) {}

 private:
  PeriodicThread thread_;
};

}  // namespace segmentor
