// PeriodicThread: calls a function every interval on a thread of its own until destroyed.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace segmentor {

// The first call comes one interval after construction. The destructor stops the thread at
// once (a wait in progress ends early; a call in progress finishes) and joins it. `tick` must
// not throw.
class PeriodicThread {
 public:
  PeriodicThread(std::function<void()> tick, std::chrono::milliseconds interval);
  ~PeriodicThread();
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;  // last: starts after the members it uses exist
};

}  // namespace segmentor
