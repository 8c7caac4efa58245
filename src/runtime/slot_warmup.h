// Warming a GPU lane's slots before the first task: every model's first call on every slot
// thread, so the first frames of a run are not the slow ones.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "runtime/device_lane.h"

namespace segmentor {

// Note [Warm every slot before ready]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// A model's first call on a new thread and stream is slow: LibTorch creates that thread's cuBLAS
// handle and workspace, cuDNN builds its execution plans (LibTorch keeps them per thread and per
// input shape), and the stream's first blocks come from the driver. On the H200 those first calls
// took 3-6 s per slot with the stand-ins (bench/RESULTS.md, third session), so the first frames
// of every run were its p99. Calibration warms only the thread that loads the models.
//
// So once a GPU lane is calibrated, every batch size of every model whose passes run on a thread
// of its own (batched: Note [Batching admitted tasks]; or kept there at batch 1: Note [Dear first
// calls on a new thread]) runs once on that thread, from 1 up to what the gate admits now, under
// tickets for as many tasks as the batch holds; the models side by side, each under its own
// tickets, as their batches run in service. They come first so that the slots' concurrent calls
// below meet only batch sizes already run. The slots' warm-up used to take ~1 s per slot, one
// slot after another (16 slots: 15-17 s): the selfie model, unbatched and so called on every slot
// thread, built its cuDNN plans anew on each (bench/RESULTS.md, eighth and ninth sessions). It
// now batches, so it builds them on its batcher's thread, once per batch size (~0.9 s each: ~7 s
// of a 16-slot warm-up, measured), and since its batches cost about the same at any size they now
// run padded to its limit, one size to build (Note [Flat batches run padded]): a 16-slot restart
// on the H200 became ready in 3.6-3.9 s instead of 7.7-9.6 s (bench/RESULTS.md, tenth session).
// The log line's mean call time per model shows which model a slow warm-up waits for.
// Then one synthetic frame runs through each model on every slot thread, all slots at once, each
// under a ticket of the lane's own gate (with the calibrated prediction for that frame), so
// warming never admits more than a task would; slots the gate cannot admit at once are warmed
// as tickets come free. The slot threads belong to the lane (Note [Slot threads outlive
// engines]), so what is warmed here is what serve's and bench's engines use. A failure (an
// out-of-memory error, a model that throws) is logged and ends nothing: the tasks themselves
// would meet it and go through the recovery ladder.
struct WarmupReport {
  int slots = 0;             // slot threads that ran every model once
  int batch_size = 0;        // batches warmed from 1 up to this (0: no batched model)
  int failures = 0;          // model calls that failed (logged)
  double seconds = 0;        // wall time of the whole warm-up
  double batch_seconds = 0;  // of which the batch sizes, first (the rest is the slots, all at once)
  // From the slots' start until the quickest slot had run every model. Close to the slots' whole
  // time: they ran side by side and each first call was slow; far below it: something
  // serialised them.
  double first_slot_seconds = 0;
  // Per model, the mean time of its call on a slot thread (waits for a batch included): which
  // model's first calls on a new thread are the slow ones.
  std::map<std::string, double> mean_call_seconds;
  // The lane's allocator over the warm-up (GPU lanes): allocations that had to free the cache
  // first, and what it holds after. Near the cap, each slot's stream filling its own cache would
  // flush the others' again and again.
  std::int64_t alloc_retries = 0;
  std::int64_t reserved_bytes_after = 0;
};

// Blocks until every slot in [0, slots) has been warmed or has failed. A CPU lane (serialised,
// no slot threads) is not warmed: an empty report.
WarmupReport warm_slots(DeviceLane& lane, int slots);

}  // namespace segmentor
