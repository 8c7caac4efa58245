// HostMemory: DeviceMemory for the CPU lane. The gate then guards the machine's RAM the way it
// guards a GPU's memory: "total" is physical memory, "free" is what the kernel says is available.
#pragma once

#include <mutex>

#include "memory/device_memory.h"

namespace segmentor {

// Thread-safe (reads /proc/meminfo on each snapshot; limit_mutex_ guards the cap).
class HostMemory : public DeviceMemory {
 public:
  MemorySnapshot snapshot() override;
  void reset_peak() override {}
  // Nothing to release: LibTorch's CPU allocator returns memory to malloc as tensors die.
  std::chrono::nanoseconds release_cache() override { return std::chrono::nanoseconds(0); }
  Status set_process_limit(std::int64_t bytes) override;

 private:
  std::mutex limit_mutex_;
  std::int64_t limit_bytes_ = 0;
};

}  // namespace segmentor
