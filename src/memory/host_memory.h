// HostMemory: DeviceMemory for the CPU lane. The gate then guards the machine's RAM the way it
// guards a GPU's memory: "total" is physical memory, "free" is what the kernel says is available —
// both narrowed to the container's memory limit when there is one (Note [Host memory in a
// container]).
#pragma once

#include <filesystem>
#include <mutex>
#include <optional>

#include "memory/device_memory.h"

namespace segmentor {

// Note [Host memory in a container]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// /proc/meminfo shows the whole machine, also inside a container; the kernel's OOM killer acts on
// the container's cgroup limit. So when the cgroup has a memory limit (v2 memory.max, or v1
// memory.limit_in_bytes) below MemTotal, "total" is that limit and "free" the smaller of
// MemAvailable and the limit minus the cgroup's usage not counting inactive file cache (which the
// kernel reclaims before it kills anyone).

struct HostMemoryOptions {
  std::filesystem::path meminfo = "/proc/meminfo";
  std::filesystem::path cgroup_root = "/sys/fs/cgroup";  // v2 files here; v1 under memory/
};

// Thread-safe (reads the files on each snapshot; limit_mutex_ guards the cap).
class HostMemory : public DeviceMemory {
 public:
  explicit HostMemory(HostMemoryOptions options = {}) : options_(std::move(options)) {}
  MemorySnapshot snapshot() override;
  void reset_peak() override {}
  // Nothing to release: LibTorch's CPU allocator returns memory to malloc as tensors die.
  std::chrono::nanoseconds release_cache() override { return std::chrono::nanoseconds(0); }
  Status set_process_limit(std::int64_t bytes) override;

 private:
  struct CgroupMemory {
    std::int64_t limit = 0;
    std::int64_t usage = 0;  // without inactive file cache
  };
  std::optional<CgroupMemory> read_cgroup() const;

  const HostMemoryOptions options_;
  std::mutex limit_mutex_;
  std::int64_t limit_bytes_ = 0;
};

}  // namespace segmentor
