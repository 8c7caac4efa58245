// FakeDevice: a DeviceMemory with a caching allocator model, for tests and the CPU bench.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "common/status.h"
#include "memory/device_memory.h"

namespace segmentor {

// Note [Fake device caching model]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Close enough to c10's caching allocator to exercise the policy, simple enough to reason about in
// a test:
//  * allocate(n) first reuses the smallest free cached block of at least n bytes, whole (no
//    splitting); otherwise it reserves a new n-byte block if the capacity allows:
//      reserved + n <= min(capacity - other_process_bytes, process_limit).
//  * free(id) keeps the block reserved and cached; only release_cache() gives cached blocks back.
//  * So a request can fail although enough bytes are free in total — split across cached blocks
//    that are each too small, plus unreserved capacity that is too small: fragmentation. Unlike
//    c10, the fake does not empty its cache on its own before failing, so tests see exactly when
//    the policy's release_cache() is what makes the retry succeed.
//  * Injected failures (every Nth, seeded probability, always) fail before any of this and count as
//    num_ooms, as a real CUDA OOM would.

// Thread-safe: one mutex (mutex_) guards all state, so lanes, the gate and tests may share it.
class FakeDevice : public DeviceMemory {
 public:
  using AllocationId = std::int64_t;

  explicit FakeDevice(std::int64_t capacity_bytes);
  FakeDevice(const FakeDevice&) = delete;
  FakeDevice& operator=(const FakeDevice&) = delete;

  // --- DeviceMemory ---
  MemorySnapshot snapshot() override;
  void reset_peak() override;
  std::chrono::nanoseconds release_cache() override;  // returns the configured release cost
  Status set_process_limit(std::int64_t bytes) override;

  // --- the fake allocator ---
  // An id for free(), or kOutOfMemory (injected, or no cached block and no capacity fits).
  Result<AllocationId> allocate(std::int64_t bytes);
  // Returns the allocation's block to the cache. Unknown ids are ignored (and counted).
  void free(AllocationId id);

  // --- the world around us ---
  // Bytes other processes hold on the card; shrinks free memory and the budget at once.
  void set_other_process_bytes(std::int64_t bytes);
  void set_utilization_percent(std::optional<double> percent);
  // What release_cache() reports it cost (a real emptyCache + synchronize takes milliseconds).
  void set_release_cost(std::chrono::nanoseconds cost);

  // --- out of memory on demand (failures are independent of each other; any one fails) ---
  void fail_every_nth(int n);                         // n-th, 2n-th, ... allocate(); 0 = off
  void fail_with_probability(double p, std::uint64_t seed);  // p = 0 turns it off
  void fail_always(bool on);

  // --- observation for tests ---
  std::int64_t allocated_bytes() const;
  std::int64_t reserved_bytes() const;
  std::int64_t cached_bytes() const;  // reserved but not allocated
  int live_allocations() const;
  int allocate_calls() const;
  int snapshot_calls() const;
  int release_calls() const;
  int unknown_frees() const;

 private:
  // The most this process may reserve now. Requires mutex_.
  std::int64_t reservable_locked() const;
  bool inject_failure_locked();

  mutable std::mutex mutex_;
  std::int64_t capacity_;
  std::int64_t other_process_bytes_ = 0;
  std::int64_t process_limit_ = 0;
  std::optional<double> utilization_;
  std::chrono::nanoseconds release_cost_{0};

  std::map<AllocationId, std::int64_t> live_;  // id -> block size
  std::multiset<std::int64_t> cached_blocks_;  // sizes of free cached blocks
  AllocationId next_id_ = 1;
  std::int64_t allocated_ = 0;
  std::int64_t reserved_ = 0;
  std::int64_t peak_allocated_ = 0;
  std::int64_t peak_reserved_ = 0;
  std::int64_t num_ooms_ = 0;

  int fail_every_n_ = 0;
  double fail_probability_ = 0.0;
  std::mt19937_64 rng_;
  bool fail_always_ = false;

  int allocate_calls_ = 0;
  int snapshot_calls_ = 0;
  int release_calls_ = 0;
  int unknown_frees_ = 0;
};

}  // namespace segmentor
