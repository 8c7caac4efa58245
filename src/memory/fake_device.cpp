#include "memory/fake_device.h"

#include <algorithm>
#include <string>

namespace segmentor {

FakeDevice::FakeDevice(std::int64_t capacity_bytes) : capacity_(capacity_bytes) {}

MemorySnapshot FakeDevice::snapshot() {
  std::lock_guard lock(mutex_);
  ++snapshot_calls_;
  MemorySnapshot s;
  s.device_total_bytes = capacity_;
  s.device_free_bytes = std::max<std::int64_t>(0, capacity_ - other_process_bytes_ - reserved_);
  s.process_limit_bytes = process_limit_;
  s.allocated_bytes = allocated_;
  s.reserved_bytes = reserved_;
  s.peak_allocated_bytes = peak_allocated_;
  s.peak_reserved_bytes = peak_reserved_;
  s.num_ooms = num_ooms_;
  s.num_alloc_retries = 0;  // the fake never empties its cache by itself
  s.gpu_utilization_percent = utilization_;
  return s;
}

void FakeDevice::reset_peak() {
  std::lock_guard lock(mutex_);
  peak_allocated_ = allocated_;
  peak_reserved_ = reserved_;
}

std::chrono::nanoseconds FakeDevice::release_cache() {
  std::lock_guard lock(mutex_);
  ++release_calls_;
  for (const std::int64_t size : cached_blocks_) reserved_ -= size;
  cached_blocks_.clear();
  return release_cost_;
}

Status FakeDevice::set_process_limit(std::int64_t bytes) {
  if (bytes < 0) return invalid_argument("process memory limit must be >= 0, got " +
                                         std::to_string(bytes));
  std::lock_guard lock(mutex_);
  process_limit_ = bytes;
  return Status::Ok();
}

std::int64_t FakeDevice::reservable_locked() const {
  std::int64_t limit = capacity_ - other_process_bytes_;
  if (process_limit_ > 0) limit = std::min(limit, process_limit_);
  return limit;
}

bool FakeDevice::inject_failure_locked() {
  if (fail_always_) return true;
  if (fail_every_n_ > 0 && allocate_calls_ % fail_every_n_ == 0) return true;
  if (fail_probability_ > 0.0) {
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    if (uniform(rng_) < fail_probability_) return true;
  }
  return false;
}

Result<FakeDevice::AllocationId> FakeDevice::allocate(std::int64_t bytes) {
  if (bytes <= 0) return invalid_argument("allocation size must be > 0");
  std::lock_guard lock(mutex_);
  ++allocate_calls_;
  if (inject_failure_locked()) {
    ++num_ooms_;
    return out_of_memory("fake device: injected out-of-memory allocating " + format_bytes(bytes));
  }
  std::int64_t block = 0;
  if (auto it = cached_blocks_.lower_bound(bytes); it != cached_blocks_.end()) {
    block = *it;  // smallest cached block that fits, reused whole
    cached_blocks_.erase(it);
  } else if (reserved_ + bytes <= reservable_locked()) {
    block = bytes;
    reserved_ += block;
    peak_reserved_ = std::max(peak_reserved_, reserved_);
  } else {
    ++num_ooms_;
    return out_of_memory("fake device: tried to allocate " + format_bytes(bytes) + "; " +
                         format_bytes(reserved_) + " reserved (" + format_bytes(allocated_) +
                         " allocated), " + format_bytes(reservable_locked()) + " reservable");
  }
  allocated_ += block;
  peak_allocated_ = std::max(peak_allocated_, allocated_);
  const AllocationId id = next_id_++;
  live_.emplace(id, block);
  return id;
}

void FakeDevice::free(AllocationId id) {
  std::lock_guard lock(mutex_);
  auto it = live_.find(id);
  if (it == live_.end()) {
    ++unknown_frees_;
    return;
  }
  allocated_ -= it->second;
  cached_blocks_.insert(it->second);
  live_.erase(it);
}

void FakeDevice::set_other_process_bytes(std::int64_t bytes) {
  std::lock_guard lock(mutex_);
  other_process_bytes_ = std::max<std::int64_t>(0, bytes);
}

void FakeDevice::set_utilization_percent(std::optional<double> percent) {
  std::lock_guard lock(mutex_);
  utilization_ = percent;
}

void FakeDevice::set_release_cost(std::chrono::nanoseconds cost) {
  std::lock_guard lock(mutex_);
  release_cost_ = cost;
}

void FakeDevice::fail_every_nth(int n) {
  std::lock_guard lock(mutex_);
  fail_every_n_ = std::max(0, n);
}

void FakeDevice::fail_with_probability(double p, std::uint64_t seed) {
  std::lock_guard lock(mutex_);
  fail_probability_ = std::clamp(p, 0.0, 1.0);
  rng_.seed(seed);
}

void FakeDevice::fail_always(bool on) {
  std::lock_guard lock(mutex_);
  fail_always_ = on;
}

std::int64_t FakeDevice::allocated_bytes() const {
  std::lock_guard lock(mutex_);
  return allocated_;
}
std::int64_t FakeDevice::reserved_bytes() const {
  std::lock_guard lock(mutex_);
  return reserved_;
}
std::int64_t FakeDevice::cached_bytes() const {
  std::lock_guard lock(mutex_);
  return reserved_ - allocated_;
}
int FakeDevice::live_allocations() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(live_.size());
}
int FakeDevice::allocate_calls() const {
  std::lock_guard lock(mutex_);
  return allocate_calls_;
}
int FakeDevice::snapshot_calls() const {
  std::lock_guard lock(mutex_);
  return snapshot_calls_;
}
int FakeDevice::release_calls() const {
  std::lock_guard lock(mutex_);
  return release_calls_;
}
int FakeDevice::unknown_frees() const {
  std::lock_guard lock(mutex_);
  return unknown_frees_;
}

}  // namespace segmentor
