#include "memory/device_memory.h"

#include <algorithm>
#include <array>
#include <cstdio>

namespace segmentor {

std::int64_t MemorySnapshot::other_usage_bytes() const {
  // The driver's "used" figure includes our own reserved blocks; what is left is somebody else's
  // (or our CUDA context's), and that is what we cannot plan on getting back.
  const std::int64_t used = device_total_bytes - device_free_bytes;
  return std::max<std::int64_t>(0, used - reserved_bytes);
}

std::int64_t MemorySnapshot::budget_bytes() const {
  std::int64_t budget = device_total_bytes - other_usage_bytes();
  if (process_limit_bytes > 0) budget = std::min(budget, process_limit_bytes);
  return std::max<std::int64_t>(0, budget);
}

std::string format_bytes(std::int64_t bytes) {
  constexpr std::array<const char*, 5> kUnits = {"B", "KiB", "MiB", "GiB", "TiB"};
  const bool negative = bytes < 0;
  double value = static_cast<double>(negative ? -bytes : bytes);
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  std::array<char, 48> buffer{};
  if (unit == 0) {
    std::snprintf(buffer.data(), buffer.size(), "%s%lld B", negative ? "-" : "",
                  static_cast<long long>(negative ? -bytes : bytes));
  } else {
    std::snprintf(buffer.data(), buffer.size(), "%s%.1f %s", negative ? "-" : "", value,
                  kUnits[unit]);
  }
  return buffer.data();
}

std::string MemorySnapshot::describe() const {
  std::string out = "total " + format_bytes(device_total_bytes) + ", free " +
                    format_bytes(device_free_bytes);
  if (process_limit_bytes > 0) out += ", cap " + format_bytes(process_limit_bytes);
  out += ", others " + format_bytes(other_usage_bytes());
  out += ", budget " + format_bytes(budget_bytes());
  out += ", allocated " + format_bytes(allocated_bytes) + " (peak " +
         format_bytes(peak_allocated_bytes) + ")";
  out += ", reserved " + format_bytes(reserved_bytes) + " (peak " +
         format_bytes(peak_reserved_bytes) + ")";
  out += ", ooms " + std::to_string(num_ooms) + ", alloc retries " +
         std::to_string(num_alloc_retries);
  if (gpu_utilization_percent) {
    std::array<char, 32> buffer{};
    std::snprintf(buffer.data(), buffer.size(), ", utilisation %.0f%%", *gpu_utilization_percent);
    out += buffer.data();
  }
  return out;
}

}  // namespace segmentor
