// PgJobStore: job progress in PostgreSQL, so it survives a worker restart (CONTRACT §6 FIX).
#pragma once

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "common/status.h"
#include "jobs/job_store.h"
#include "storage/postgres.h"

namespace segmentor {

// Note [Worker tables]
// The worker's own tables, prefixed segmentor_ so they never collide with upstream's, created by
// create() with CREATE TABLE IF NOT EXISTS under a transaction-scoped advisory lock (two workers
// starting together would otherwise race in the catalog). No version table: when the schema
// changes, add columns with ADD COLUMN IF NOT EXISTS next to the CREATE, keeping it idempotent.
//   segmentor_job_progress     (job_id, asset_type) -> expected (NULL until the .batch), done,
//                              failed, batch_event_id, started_at (watermark start), completed_at,
//                              completion_reason, completion_published,
//                              publish_claimed_until (Note [Completion claims]), updated_at
//   segmentor_processed_assets (job_id, asset_type, asset_id) -> outcome done|failed, mask_path,
//                              at
// Retention: at start-up, jobs whose completion was published more than 30 days ago are removed
// with their processed assets (a redelivery that late would start the job afresh; nothing upstream
// keeps messages that long).
// transact() inserts the progress row if missing, locks it with SELECT ... FOR UPDATE, lets the
// body look up and upsert processed rows, writes the counters back and commits: an asset's row
// and its count land in one transaction (Note [Store transactions] in jobs/job_store.h).

// JobStore on PostgreSQL. Thread-safe (the database serialises); concurrent workers on the same
// database are safe too (row locks). Does not own `db`, which must outlive it.
class PgJobStore final : public JobStore {
 public:
  // Creates the tables if missing and declares the prepared statements.
  static Result<std::unique_ptr<PgJobStore>> create(PostgresDatabase* db);

  Status transact(const JobKey& key, const Body& body) override;
  Result<std::optional<JobProgress>> load(const JobKey& key) override;
  Result<std::vector<std::pair<JobKey, JobProgress>>> list_open_jobs() override;
  Result<std::vector<std::pair<JobKey, JobProgress>>> claim_unpublished_completions(
      JobTime now, JobClock::duration lease) override;

  // The mask path recorded for an asset, nullopt when the asset is unknown or failed (tests,
  // diagnostics).
  Result<std::optional<std::string>> recorded_mask_path(const JobKey& key,
                                                        const std::string& asset_id);

 private:
  explicit PgJobStore(PostgresDatabase* db) : db_(db) {}
  // Runs a statement returning progress rows; `claim` = (now, claimed until) in microseconds.
  Result<std::vector<std::pair<JobKey, JobProgress>>> list(
      const char* statement,
      std::optional<std::pair<std::int64_t, std::int64_t>> claim = std::nullopt);

  PostgresDatabase* const db_;
};

}  // namespace segmentor
