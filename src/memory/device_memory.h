// DeviceMemory: what the memory manager's policy needs to know about, and do to, one GPU.
//
// The gate, the recovery ladder and the cache policy see only this interface, so they are tested on
// the CPU with FakeDevice; CudaDeviceMemory (cuda_device_memory.h) is the real one.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"

namespace segmentor {

// One reading of the device and of this process's caching allocator. All sizes in bytes.
struct MemorySnapshot {
  std::int64_t device_total_bytes = 0;  // the card's memory, as the driver reports it
  std::int64_t device_free_bytes = 0;   // free on the card (all processes), as the driver reports
  std::int64_t process_limit_bytes = 0; // this process's cap (GPU_MEMORY_LIMIT_MB); 0 = none

  // This process's caching allocator, current and peak since the last reset_peak().
  std::int64_t allocated_bytes = 0;  // in live tensors
  std::int64_t reserved_bytes = 0;   // held from the driver: allocated + cached
  std::int64_t peak_allocated_bytes = 0;
  std::int64_t peak_reserved_bytes = 0;
  std::int64_t num_ooms = 0;           // allocations that failed even after freeing the cache
  std::int64_t num_alloc_retries = 0;  // allocations that needed the cache freed first

  std::optional<double> gpu_utilization_percent;  // 0..100 when the device can tell (NVML)

  // Bytes held on the card by everything that is not this process's allocator: other processes,
  // and this process's own CUDA context (which we cannot free either). Never negative.
  std::int64_t other_usage_bytes() const;

  // The bytes this process may plan with: the card's memory not held by others, further capped by
  // process_limit_bytes. See Note [Gate arithmetic] in admission_gate.h. Never negative.
  std::int64_t budget_bytes() const;

  // "total 80.0 GiB, free 60.1 GiB, cap 8.0 GiB, allocated 3.1 GiB (peak 4.0 GiB), ..."
  std::string describe() const;
};

// The device, as the memory manager's policy sees it.
//
// Thread-safety: implementations must be thread-safe. The gate reads snapshot() from whichever
// thread is admitting, the cache policy releases from the lane or a monitor thread, and the
// recovery ladder calls release_cache() from the lane that hit the out-of-memory error.
class DeviceMemory {
 public:
  virtual ~DeviceMemory() = default;

  // A fresh reading. Cheap (microseconds) but not free: callers that ask per decision rate-limit.
  virtual MemorySnapshot snapshot() = 0;

  // Starts a new peak-measuring window (calibration reads the peak of one warm-up).
  virtual void reset_peak() = 0;

  // Returns the allocator's cached, unused blocks to the driver and waits for the device to finish
  // queued work (empty cache + synchronize). Returns how long that took, so its cost is reported.
  virtual std::chrono::nanoseconds release_cache() = 0;

  // Caps this process's allocations at `bytes` (0 removes the cap). Allocations past the cap fail
  // with an out-of-memory error as on a smaller card.
  virtual Status set_process_limit(std::int64_t bytes) = 0;
};

// "1.5 GiB", "640.0 MiB", "12 B": for logs.
std::string format_bytes(std::int64_t bytes);

}  // namespace segmentor
