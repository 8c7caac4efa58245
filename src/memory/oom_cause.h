// Judging an out-of-memory error: did we admit too much, or did it strike with room to spare?
#pragma once

#include <cstdint>
#include <string>

#include "memory/device_memory.h"

namespace segmentor {

// Note [Over-admission or a passing OOM]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The gate shrinks after an OOM because an OOM usually proves that what was in flight did not
// fit (Note [Gate arithmetic]). That is only true when the OOM struck with the card near our
// budget. An OOM can also strike far below it:
//   * a neighbour on the card spiked for a moment and is gone again by the time we look;
//   * a transient failure of a library workspace (cuDNN, cuBLAS) or the driver;
//   * fault injection (SEGMENTOR_INJECT_OOM_RATE), which throws before the model allocates.
// Shrinking the gate for those throttles every later task for something admission did not cause:
// with 10 % injected OOMs the stand-ins ran at 0.30 of their fault-free throughput (issue 13),
// and each back-off (0.5, 1, 2 s) kept the task's frame waiting besides.
//
// So the ladder reads the device right after the OOM, before it releases anything, and asks
//
//   room   = budget − reserved          (budget as in Note [Gate arithmetic], read now)
//   margin = max(largest task admitted so far, (1 − GPU_MEMORY_THRESHOLD) × budget)
//   over-admission  ⇔  room < margin
//
// Why this is the line: c10's caching allocator empties its cache and retries before it throws,
// so a real OOM at the budget leaves `reserved` within one request of it, and one request of a
// task is less than the task's calibrated peak. A failed task's tensors go back to the cache
// (still reserved) as its exception unwinds, so the reading taken in the ladder still sees them.
// If instead a whole task's worth of bytes — and more than the gate's own headroom — was still
// free when the OOM struck, admitting fewer tasks would not have prevented it.
//
// A neighbour that is still on the card shows up as a small budget (its memory counts as
// "others"), so it reads as over-admission and the gate shrinks, as it should: the card really is
// full. Only an OOM that leaves the room visibly free is treated as passing.
//
// What the ladder does with a passing OOM (Note [Recovery ladder]): the first one of a task is
// retried at once, with the task's ticket kept, no cache release (the allocator already released
// what it could before throwing, and our own release costs a synchronize and the re-mallocs of
// every slot) and no shrink. A second passing OOM of the same task backs off, still without a
// release or a shrink: something that does not clear at once deserves a pause, but it is no
// evidence against admission, and the room it left free says our cache is not in the way. On the
// H200 with 10 % injected OOMs, releasing there (45 releases in 1,000 frames) cost more than the
// back-offs themselves: each release makes every slot re-allocate with cudaMalloc, which
// synchronises the device.
//
// Its pause is kPassingBackoffShare of the back-off step (0.1 s, 0.2 s, 0.4 s), not the whole
// step. The steps are sized for memory to drain from the tasks in flight, and a passing OOM is
// not waiting for that: the room was free when it struck. With the whole steps, 10 % injected
// OOMs cost the stand-ins 21–36 s of back-off in 1,000 frames, and they ran at 0.71–0.88 of
// their fault-free throughput (bench/RESULTS.md, seventh and tenth sessions). A neighbour that
// still holds the card reads as over-admission above and keeps the whole steps.

enum class OomCause {
  kOverAdmission,  // the card was near our budget: admit less
  kBelowBudget,    // room to spare at the OOM: not admission's fault
};

struct OomJudgement {
  OomCause cause = OomCause::kOverAdmission;
  std::int64_t budget_bytes = 0;
  std::int64_t used_bytes = 0;    // our reserved bytes at the OOM
  std::int64_t margin_bytes = 0;  // room below which the OOM counts as over-admission

  // "used 2.0 GiB of a 8.0 GiB budget, 6.0 GiB free > margin 1.2 GiB": for the ladder's trail.
  std::string describe() const;
};

// Judges one OOM from a reading taken right after it; see the Note. `largest_task_bytes` is the
// largest prediction the gate admitted (0 when nothing is calibrated); `memory_threshold` is
// GPU_MEMORY_THRESHOLD in (0, 1].
OomJudgement judge_out_of_memory(const MemorySnapshot& at_oom, std::int64_t largest_task_bytes,
                                 double memory_threshold);

const char* to_string(OomCause cause);

}  // namespace segmentor
