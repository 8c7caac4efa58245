#include "pipeline/lane_picker.h"

#include <algorithm>
#include <numeric>
#include <tuple>

namespace segmentor {

LaneLoad lane_load(const GateStats& stats, std::int64_t task_bytes) {
  LaneLoad load;
  load.task_bytes = task_bytes;
  load.in_flight = stats.in_flight;
  load.waiting = stats.waiting;
  load.room_bytes = stats.limit_bytes - stats.resident_bytes;
  load.free_bytes = load.room_bytes - stats.in_flight_bytes;
  return load;
}

std::vector<std::size_t> lane_preference(std::span<const LaneLoad> loads) {
  std::vector<std::size_t> order(loads.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  auto key = [&](std::size_t i) {
    const LaneLoad& l = loads[i];
    return std::make_tuple(!l.fits(), !l.fits_when_idle(), l.in_flight + l.waiting, -l.free_bytes,
                           i);
  };
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
  return order;
}

}  // namespace segmentor
