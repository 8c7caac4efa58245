#include "jobs/in_memory_job_store.h"

namespace segmentor {
namespace {

// Stages puts on a copy of the job's assets; the store swaps the copy in on success.
class StagedTransaction final : public JobTransaction {
 public:
  explicit StagedTransaction(std::map<std::string, StoredAsset> assets)
      : assets_(std::move(assets)) {}

  Result<std::optional<AssetOutcome>> find_asset(const std::string& asset_id) override {
    const auto it = assets_.find(asset_id);
    if (it == assets_.end()) return std::optional<AssetOutcome>();
    return std::optional<AssetOutcome>(it->second.outcome);
  }

  Status put_asset(const AssetRecord& record, JobTime at) override {
    assets_[record.asset_id] = StoredAsset{record.outcome, record.mask_path, at};
    return Status::Ok();
  }

  std::map<std::string, StoredAsset>& assets() { return assets_; }

 private:
  std::map<std::string, StoredAsset> assets_;
};

}  // namespace

Status InMemoryJobStore::transact(const JobKey& key, const Body& body) {
  std::lock_guard lock(mutex_);
  const auto existing = jobs_.find(key);
  const Job blank;
  const Job& current = existing == jobs_.end() ? blank : existing->second;

  if (replay_next_) {
    replay_next_ = false;
    JobProgress scratch = current.progress;
    StagedTransaction discarded(current.assets);
    SEGMENTOR_RETURN_IF_ERROR(body(scratch, discarded));
  }

  JobProgress progress = current.progress;
  StagedTransaction txn(current.assets);
  SEGMENTOR_RETURN_IF_ERROR(body(progress, txn));
  Job& stored = jobs_[key];
  stored.progress = std::move(progress);
  stored.assets = std::move(txn.assets());
  return Status::Ok();
}

Result<std::optional<JobProgress>> InMemoryJobStore::load(const JobKey& key) {
  std::lock_guard lock(mutex_);
  const auto it = jobs_.find(key);
  if (it == jobs_.end()) return std::optional<JobProgress>();
  return std::optional<JobProgress>(it->second.progress);
}

Result<std::vector<std::pair<JobKey, JobProgress>>> InMemoryJobStore::list_open_jobs() {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<JobKey, JobProgress>> open;
  for (const auto& [key, job] : jobs_) {
    if (job.progress.expected.has_value() && !job.progress.completed()) {
      open.emplace_back(key, job.progress);
    }
  }
  return open;
}

Result<std::vector<std::pair<JobKey, JobProgress>>> InMemoryJobStore::claim_unpublished_completions(
    JobTime now, JobClock::duration lease) {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<JobKey, JobProgress>> claimed;
  for (auto& [key, job] : jobs_) {
    JobProgress& p = job.progress;
    if (!p.completed() || p.completion_published) continue;
    if (p.publish_claimed_until.has_value() && *p.publish_claimed_until > now) continue;
    p.publish_claimed_until = now + lease;
    claimed.emplace_back(key, p);
  }
  return claimed;
}

std::map<std::string, StoredAsset> InMemoryJobStore::assets(const JobKey& key) const {
  std::lock_guard lock(mutex_);
  const auto it = jobs_.find(key);
  return it == jobs_.end() ? std::map<std::string, StoredAsset>{} : it->second.assets;
}

}  // namespace segmentor
