#include "common/periodic_thread.h"

#include <utility>

namespace segmentor {

PeriodicThread::PeriodicThread(std::function<void()> tick, std::chrono::milliseconds interval)
    : thread_([this, tick = std::move(tick), interval](std::stop_token stop) {
        std::unique_lock lock(mutex_);
        while (true) {
          // Wakes after one interval, or at once when stop is requested.
          wake_.wait_for(lock, stop, interval, [] { return false; });
          if (stop.stop_requested()) return;
          lock.unlock();
          tick();
          lock.lock();
        }
      }) {}

PeriodicThread::~PeriodicThread() {
  thread_.request_stop();
  thread_.join();
}

}  // namespace segmentor
