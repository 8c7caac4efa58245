// Which GPU lane a task is offered to first, when the engine has one per visible GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "memory/admission_gate.h"

namespace segmentor {

// What the picker knows of one lane: its gate's state a moment ago.
struct LaneLoad {
  int in_flight = 0;
  int waiting = 0;
  std::int64_t free_bytes = 0;  // limit − resident − in-flight bytes (negative: over)
  std::int64_t room_bytes = 0;  // limit − resident: what tasks may hold with none in flight
  std::int64_t task_bytes = 0;  // the task's predicted bytes on this lane (0 = uncalibrated)

  // The task's bytes fit what the gate has left, and nobody is queued ahead of it.
  bool fits() const { return waiting == 0 && task_bytes <= free_bytes; }
  // The task would fit once this lane's tasks in flight finish.
  bool fits_when_idle() const { return task_bytes <= room_bytes; }
};

LaneLoad lane_load(const GateStats& stats, std::int64_t task_bytes);

// Note [Picking a lane]
// ~~~~~~~~~~~~~~~~~~~~~
// Each GPU has its own gate, so the question "may this task run?" is answered per card; the
// picker only orders the cards. The order is: lanes the task fits now (by its predicted bytes,
// with nobody queued); then lanes it would fit once their tasks finish; then fewest tasks in
// flight or waiting (compute is what the lanes share out, and a queue is work already
// promised); then the most free bytes; then the lower index (deterministic). The engine offers
// the task with the non-blocking try_admit() to each lane it fits now, in that order, and takes
// the first that admits. When none does, it queues (FIFO) at the first lane of the order. The
// byte tests come before the counts because an empty gate admits any task (MIN' = 1, so that a
// task bigger than the budget still runs): a card another process has filled is idle, and
// ordered by counts alone it would take the next task and run it out of memory while the other
// card merely had a queue. A task that fits no lane even when idle goes to the least busy one
// and runs there alone.
// The loads are read without holding any gate, so two tasks may pick the same lane at once;
// try_admit() is what keeps each card within its budget, and the next pick sees the difference.
std::vector<std::size_t> lane_preference(std::span<const LaneLoad> loads);

}  // namespace segmentor
