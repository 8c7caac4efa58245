#include "memory/host_memory.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

namespace segmentor {
namespace {

// The first token of `path` as a byte count; nullopt when missing or not a number ("max").
std::optional<std::int64_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string token;
  if (!(in >> token)) return std::nullopt;
  try {
    std::size_t used = 0;
    const long long value = std::stoll(token, &used);
    if (used != token.size() || value < 0) return std::nullopt;
    return static_cast<std::int64_t>(value);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The value of `key` in a "key value" stats file (memory.stat), 0 when absent.
std::int64_t read_stat(const std::filesystem::path& path, std::string_view key) {
  std::ifstream in(path);
  std::string name;
  std::int64_t value = 0;
  while (in >> name >> value) {
    if (name == key) return value;
  }
  return 0;
}

}  // namespace

// Note [Host memory in a container].
std::optional<HostMemory::CgroupMemory> HostMemory::read_cgroup() const {
  const std::filesystem::path v2 = options_.cgroup_root;
  const std::filesystem::path v1 = options_.cgroup_root / "memory";
  std::optional<std::int64_t> limit = read_bytes(v2 / "memory.max");
  std::filesystem::path dir = v2;
  std::optional<std::int64_t> usage = read_bytes(v2 / "memory.current");
  std::string_view inactive = "inactive_file";
  if (!limit) {
    limit = read_bytes(v1 / "memory.limit_in_bytes");
    usage = read_bytes(v1 / "memory.usage_in_bytes");
    dir = v1;
    inactive = "total_inactive_file";
  }
  if (!limit || !usage) return std::nullopt;
  CgroupMemory cgroup;
  cgroup.limit = *limit;
  cgroup.usage = std::max<std::int64_t>(0, *usage - read_stat(dir / "memory.stat", inactive));
  return cgroup;
}

MemorySnapshot HostMemory::snapshot() {
  MemorySnapshot snapshot;
  std::ifstream meminfo(options_.meminfo);
  std::string line;
  while (std::getline(meminfo, line)) {
    std::istringstream fields(line);
    std::string key;
    std::int64_t kib = 0;
    fields >> key >> kib;
    if (key == "MemTotal:") snapshot.device_total_bytes = kib * 1024;
    if (key == "MemAvailable:") snapshot.device_free_bytes = kib * 1024;
  }
  // v1 reports "no limit" as a huge number: only a limit below the machine's memory counts.
  if (auto cgroup = read_cgroup();
      cgroup && cgroup->limit > 0 && cgroup->limit < snapshot.device_total_bytes) {
    snapshot.device_total_bytes = cgroup->limit;
    snapshot.device_free_bytes =
        std::clamp<std::int64_t>(cgroup->limit - cgroup->usage, 0, snapshot.device_free_bytes);
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
