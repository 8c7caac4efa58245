#include "memory/host_memory.h"

#include <fstream>
#include <sstream>
#include <string>

namespace segmentor {

MemorySnapshot HostMemory::snapshot() {
  MemorySnapshot snapshot;
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    std::istringstream fields(line);
    std::string key;
    std::int64_t kib = 0;
    fields >> key >> kib;
    if (key == "MemTotal:") snapshot.device_total_bytes = kib * 1024;
    if (key == "MemAvailable:") snapshot.device_free_bytes = kib * 1024;
  }
  std::lock_guard lock(limit_mutex_);
  snapshot.process_limit_bytes = limit_bytes_;
  return snapshot;
}

Status HostMemory::set_process_limit(std::int64_t bytes) {
  if (bytes < 0) return invalid_argument("memory limit must be >= 0");
  std::lock_guard lock(limit_mutex_);
  limit_bytes_ = bytes;
  return Status::Ok();
}

}  // namespace segmentor
