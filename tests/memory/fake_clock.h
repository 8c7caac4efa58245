// A manual clock for the memory tests: time moves only when the test says so (no sleeping).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

namespace segmentor::testing {

class FakeClock {
 public:
  std::chrono::steady_clock::time_point now() const {
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns_.load()));
  }
  void advance(std::chrono::nanoseconds d) { ns_ += d.count(); }
  std::function<std::chrono::steady_clock::time_point()> fn() {
    return [this] { return now(); };
  }

 private:
  std::atomic<std::int64_t> ns_{1'000'000'000};
};

}  // namespace segmentor::testing
