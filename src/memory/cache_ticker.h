// CacheTicker: calls CachePolicy::on_tick() on a thread of its own, so idle and pressure releases
// happen whether or not tasks are arriving.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "memory/cache_policy.h"

namespace segmentor {

inline constexpr std::chrono::milliseconds kCacheTickInterval{1000};

// Starts ticking at construction; the destructor stops and joins. Does not own the policy, which
// must outlive it. A tick reads the device once (pressure) and may release the cache.
class CacheTicker {
 public:
  explicit CacheTicker(CachePolicy& policy,
                       std::chrono::milliseconds interval = kCacheTickInterval);
  ~CacheTicker();
  CacheTicker(const CacheTicker&) = delete;
  CacheTicker& operator=(const CacheTicker&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;  // last: starts after the members it uses exist
};

}  // namespace segmentor
