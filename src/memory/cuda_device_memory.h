// CudaDeviceMemory: DeviceMemory on one CUDA device, through c10's CUDA caching allocator.
// Built only with SEGMENTOR_WITH_CUDA (library segmentor_memory_cuda). No CUDA or LibTorch headers
// here: they stay in the .cpp, so users of this class compile without them.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>

#include "common/status.h"
#include "memory/device_memory.h"

namespace segmentor {

// Note [Process cap on CUDA]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// GPU_MEMORY_LIMIT_MB is applied with CUDACachingAllocator::setMemoryFraction(limit / total). It
// only takes effect once CUDA and the allocator are initialised on the device, so create() makes a
// first (1-byte) allocation before anything else. Past the cap the allocator throws
// c10::OutOfMemoryError exactly as a smaller card would. The driver's free figure (cudaMemGetInfo)
// does not see the cap, so the snapshot carries it in process_limit_bytes and
// MemorySnapshot::budget_bytes() applies it (Note [Gate arithmetic]).

// Thread-safe: the c10 allocator and the CUDA runtime calls are; every call sets the device with a
// guard first (the current device is per thread); limit_mutex_ guards the cap. Owns its NVML
// session (when built with NVML); the CUDA context belongs to the process.
class CudaDeviceMemory : public DeviceMemory {
 public:
  // Initialises CUDA and the caching allocator on `device_index` (see Note [Process cap on CUDA]).
  // kInvalidArgument for a device that does not exist, kInternal when CUDA fails.
  static Result<std::unique_ptr<CudaDeviceMemory>> create(int device_index);
  ~CudaDeviceMemory() override;
  CudaDeviceMemory(const CudaDeviceMemory&) = delete;
  CudaDeviceMemory& operator=(const CudaDeviceMemory&) = delete;

  // A failed CUDA query leaves its fields at 0 (so the budget reads as 0 and the gate falls back to
  // MIN_CONCURRENT_IMAGES) rather than throwing.
  MemorySnapshot snapshot() override;
  void reset_peak() override;
  // Synchronizes the device, then empties the allocator's cache.
  std::chrono::nanoseconds release_cache() override;
  Status set_process_limit(std::int64_t bytes) override;

  int device_index() const { return device_index_; }

 private:
  struct Nvml;  // defined in the .cpp, empty without NVML
  CudaDeviceMemory(int device_index, std::int64_t total_bytes, std::unique_ptr<Nvml> nvml);

  const int device_index_;
  const std::int64_t total_bytes_;
  std::unique_ptr<Nvml> nvml_;  // null when NVML is absent or could not open the device

  mutable std::mutex limit_mutex_;
  std::int64_t process_limit_ = 0;  // bytes; 0 = none
};

}  // namespace segmentor
