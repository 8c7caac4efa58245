// A PNG line plot of one bench run's memory over time: reserved and allocated bytes, the gate's
// limit, and the cap. Drawn into an RGB buffer here and encoded with the imaging library's PNG
// encoder, so no plotting dependency is needed. Stateless; callable from any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "bench/bench_report.h"
#include "common/status.h"

namespace segmentor {

struct PlotOptions {
  int width = 900;
  int height = 420;
  std::int64_t cap_bytes = 0;  // drawn as a horizontal red line when > 0
};

// Series colours, for bench/README.md's legend.
struct PlotColours {
  static constexpr std::uint8_t kReserved[3] = {31, 119, 180};    // blue
  static constexpr std::uint8_t kAllocated[3] = {158, 202, 225};  // light blue
  static constexpr std::uint8_t kGateLimit[3] = {255, 127, 14};   // orange
  static constexpr std::uint8_t kCap[3] = {214, 39, 40};          // red
};

// The plot as PNG bytes. The x axis is seconds since the run started, the y axis GiB; the axes
// carry their maxima as numbers. kInvalidArgument for a size under 200×120.
Result<std::vector<std::uint8_t>> plot_memory_png(const std::vector<MemorySample>& samples,
                                                  const PlotOptions& options = {});

}  // namespace segmentor
