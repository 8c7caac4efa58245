#include "memory/cache_ticker.h"

namespace segmentor {

CacheTicker::CacheTicker(CachePolicy& policy, std::chrono::milliseconds interval)
    : thread_([this, &policy, interval](std::stop_token stop) {
        std::unique_lock lock(mutex_);
        while (!stop.stop_requested()) {
          // Wakes after one interval, or at once when stop is requested.
          wake_.wait_for(lock, stop, interval, [] { return false; });
          if (stop.stop_requested()) break;
          lock.unlock();
          (void)policy.on_tick();
          lock.lock();
        }
      }) {}

CacheTicker::~CacheTicker() {
  thread_.request_stop();
  thread_.join();
}

}  // namespace segmentor
