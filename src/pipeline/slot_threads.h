// SlotThreads: one long-lived thread per admission slot, on which that slot's GPU work runs.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace segmentor {

// Note [GPU work runs on slot threads]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// LibTorch keeps state per calling thread and per CUDA stream that outlives a task: each thread
// has its own cuBLAS handle and CUDA_STREAMS=worker its own stream, the caching allocator caches
// freed blocks per stream, and a cuBLAS workspace (tens of MiB on Hopper) stays allocated for
// every (handle, stream) pair ever used. Measured on the H100/H200 at an 8 GiB cap
// (bench/RESULTS.md, 2026-11-27): with GPU calls made from whichever engine thread held a ticket,
// that state grew with every thread that had ever run a task, reserved memory reached the cap, the
// allocator freed and retried a hundred times per run and throughput fell 10 %; allocated memory
// with one task in flight rose from 1.7 to 3.9 GiB over a few runs. So each gate slot (a ticket's
// slot(), in [0, MAX_CONCURRENT_IMAGES)) has one thread here, and a task's model calls run on its
// slot's thread: the per-thread and per-stream state exists once per slot, which is what the gate's
// arithmetic bounds. Slots are handed out last-in-first-out, so the warmest one is reused first.
// A batched model's forward passes run on its batcher's one thread instead (Note [Batching
// admitted tasks], models/forward_batcher.h); the task's pre- and post-processing stay here.
//
// Note [Slot threads outlive engines]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Some of that per-thread state is never given back when its thread ends: cuDNN's execution-plan
// cache is thread-local in LibTorch, and with cuDNN 9.10 and later it is deliberately leaked at
// thread exit (freeing it during teardown crashed). A GPU soak that built a new engine, and with
// it new slot threads, for every round of 200 frames grew host RSS by 3.3 GiB/h on the H200
// (bench/RESULTS.md, 2026-11-30), while the CPU soak, which has no cuDNN, stayed flat. So the
// slot threads belong to the device lane (runtime/device_lane.h), which lives as long as the
// process: every engine built on the lane — serve's, run's, each bench and soak round — reuses
// them, and the state exists once per slot for the process, as the gate assumes.
//
// Thread-safe. Threads start on first use of a slot; the destructor finishes queued work first.
class SlotThreads {
 public:
  SlotThreads() = default;
  ~SlotThreads();
  SlotThreads(const SlotThreads&) = delete;
  SlotThreads& operator=(const SlotThreads&) = delete;

  // Runs `work` on slot `slot`'s thread (slot >= 0) and waits for it to finish. Work for one slot
  // runs one item at a time, in the order given. Exceptions thrown by `work` are rethrown here.
  void run(int slot, const std::function<void()>& work);

  int threads_started() const;

 private:
  struct Slot {
    std::mutex mutex;
    std::condition_variable changed;
    std::deque<std::function<void()>> queue;
    bool stopping = false;
    std::thread thread;
  };
  static void loop(Slot& slot);
  Slot& slot(int index);

  mutable std::mutex slots_mutex_;
  std::vector<std::unique_ptr<Slot>> slots_;  // index = slot; null until first used
};

}  // namespace segmentor
