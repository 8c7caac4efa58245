// Where job progress lives: the interface the JobTracker's policy runs against, so the same policy
// is tested in memory and run on PostgreSQL (storage/pg_job_store.h).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "jobs/job_types.h"

namespace segmentor {

// The asset side of one open store transaction; valid only inside JobStore::transact's body.
class JobTransaction {
 public:
  virtual ~JobTransaction() = default;

  // The outcome already recorded for `asset_id` under this transaction's job, if any.
  virtual Result<std::optional<AssetOutcome>> find_asset(const std::string& asset_id) = 0;
  // Records `record` (insert, or overwrite the earlier outcome of the same asset id) at `at`.
  virtual Status put_asset(const AssetRecord& record, JobTime at) = 0;
};

// Persistence for job progress. Implementations must be thread-safe.
//
// Note [Store transactions]
// The tracker's whole update of a job (look up assets, count them, decide completion) runs inside
// one `transact` call: the store loads the job's progress (a blank JobProgress when it has none),
// holds it exclusively (a row lock in PostgreSQL, a mutex in memory), runs `body`, and when `body`
// returns ok saves the progress and the assets together, atomically; when it fails, nothing is
// saved. So an asset is counted exactly when its processed row is written, and two workers (or
// threads) cannot both complete a job. A store may run `body` more than once (after a lost
// connection), so `body` must keep its effects inside `progress` and the transaction.
class JobStore {
 public:
  using Body = std::function<Status(JobProgress& progress, JobTransaction& txn)>;

  virtual ~JobStore() = default;

  virtual Status transact(const JobKey& key, const Body& body) = 0;

  // The progress of `key`, or nullopt when the store has never seen it. Read-only.
  virtual Result<std::optional<JobProgress>> load(const JobKey& key) = 0;

  // Jobs with a known `expected` that have not completed (watermark candidates).
  virtual Result<std::vector<std::pair<JobKey, JobProgress>>> list_open_jobs() = 0;
  // Completed jobs whose completion is not acknowledged as published and whose publish claim has
  // expired at `now` (or was never taken): each is claimed until `now + lease` and returned, in
  // one atomic step, so of several workers asking at once exactly one gets each job.
  virtual Result<std::vector<std::pair<JobKey, JobProgress>>> claim_unpublished_completions(
      JobTime now, JobClock::duration lease) = 0;
};

}  // namespace segmentor
