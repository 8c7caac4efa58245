// A JobStore in process memory: for unit tests, and for `serve` without a database if ever wanted.
// Progress is lost with the process.
#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "jobs/job_store.h"

namespace segmentor {

// One recorded asset, as the store keeps it.
struct StoredAsset {
  AssetOutcome outcome = AssetOutcome::kDone;
  std::string mask_path;
  JobTime at;
};

// JobStore over std::map. Thread-safe: one mutex serialises every transaction (see Note [Store
// transactions] in job_store.h), which is what makes completion exactly-once in memory.
class InMemoryJobStore final : public JobStore {
 public:
  InMemoryJobStore() = default;
  InMemoryJobStore(const InMemoryJobStore&) = delete;
  InMemoryJobStore& operator=(const InMemoryJobStore&) = delete;

  Status transact(const JobKey& key, const Body& body) override;
  Result<std::optional<JobProgress>> load(const JobKey& key) override;
  Result<std::vector<std::pair<JobKey, JobProgress>>> list_open_jobs() override;
  Result<std::vector<std::pair<JobKey, JobProgress>>> claim_unpublished_completions(
      JobTime now, JobClock::duration lease) override;

  // The assets recorded under `key`, by id (tests).
  std::map<std::string, StoredAsset> assets(const JobKey& key) const;

  // Test hook: the next transaction runs its body twice, throwing the first run's effects away,
  // as a database store does after a lost connection.
  void replay_next_transaction() {
    std::lock_guard lock(mutex_);
    replay_next_ = true;
  }

 private:
  struct Job {
    JobProgress progress;
    std::map<std::string, StoredAsset> assets;
  };

  mutable std::mutex mutex_;
  std::map<JobKey, Job> jobs_;  // guarded by mutex_
  bool replay_next_ = false;    // guarded by mutex_
};

}  // namespace segmentor
