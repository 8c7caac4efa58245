// Seconds since a steady-clock instant: the one way durations are read for logs and reports.
#pragma once

#include <chrono>

namespace segmentor {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace segmentor
