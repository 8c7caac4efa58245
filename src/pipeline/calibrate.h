// Calibration: measures, on the device in hand, the bytes one task needs at each reference source
// size, so the admission gate can admit by measured bytes (DESIGN § Memory management, 1).
#pragma once

#include <string>

#include "common/status.h"
#include "memory/calibration.h"
#include "memory/device_memory.h"
#include "pipeline/segmenter.h"

namespace segmentor {

// Resident weight bytes are what the allocator held after loading, before any task:
// `allocated_after_load - allocated_before_load`, recorded under `name`.
void record_resident(CalibrationTable& table, const std::string& name,
                     std::int64_t allocated_before_load, std::int64_t allocated_after_load);

// For each reference size (calibration.h), with every model of the segmenter running (the people
// model even where the detector finds nobody: the worst case): one warm-up (so lazy initialisation
// and cuDNN autotuning are not counted), then the cache released, peak stats reset, one measured
// task. Records task_bytes() as the whole segmenter's bytes, under `task_name`. Out-of-memory
// during calibration is an error: the card cannot run one task.
Status calibrate_segmenter(Segmenter& segmenter, DeviceMemory& device, CalibrationTable& table,
                           const std::string& task_name = "task");

// One task's bytes from snapshots taken before it (cache released) and after it (peaks since the
// reset): the larger of its peak allocated and peak reserved growth, never negative. See
// Note [Calibrate reserved, not only allocated] in calibrate.cpp.
std::int64_t task_bytes(const MemorySnapshot& before, const MemorySnapshot& after);

}  // namespace segmentor
