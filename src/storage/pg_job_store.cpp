#include "storage/pg_job_store.h"

#include <chrono>
#include <string>

#include "storage/pg_txn.h"

namespace segmentor {
namespace {

// See Note [Worker tables].
constexpr const char* kSchemaSql = R"sql(
SELECT pg_advisory_xact_lock(8317500117);
CREATE TABLE IF NOT EXISTS segmentor_job_progress (
  job_id               TEXT        NOT NULL,
  asset_type           TEXT        NOT NULL CHECK (asset_type IN ('image', 'video')),
  expected             BIGINT      NULL CHECK (expected >= 0),
  done                 BIGINT      NOT NULL DEFAULT 0,
  failed               BIGINT      NOT NULL DEFAULT 0,
  batch_event_id       TEXT        NULL,
  started_at           TIMESTAMPTZ NULL,
  completed_at         TIMESTAMPTZ NULL,
  completion_reason    TEXT        NULL,
  completion_published BOOLEAN     NOT NULL DEFAULT FALSE,
  updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (job_id, asset_type)
);
CREATE INDEX IF NOT EXISTS segmentor_job_progress_open
  ON segmentor_job_progress (started_at) WHERE completed_at IS NULL AND expected IS NOT NULL;
CREATE INDEX IF NOT EXISTS segmentor_job_progress_unpublished
  ON segmentor_job_progress (completed_at)
  WHERE completed_at IS NOT NULL AND NOT completion_published;
CREATE TABLE IF NOT EXISTS segmentor_processed_assets (
  job_id     TEXT        NOT NULL,
  asset_type TEXT        NOT NULL CHECK (asset_type IN ('image', 'video')),
  asset_id   TEXT        NOT NULL,
  outcome    TEXT        NOT NULL CHECK (outcome IN ('done', 'failed')),
  mask_path  TEXT        NULL,
  at         TIMESTAMPTZ NOT NULL,
  PRIMARY KEY (job_id, asset_type, asset_id)
);
ALTER TABLE segmentor_job_progress ADD COLUMN IF NOT EXISTS publish_claimed_until TIMESTAMPTZ NULL;
DELETE FROM segmentor_processed_assets a USING segmentor_job_progress p
  WHERE a.job_id = p.job_id AND a.asset_type = p.asset_type
    AND p.completion_published AND p.completed_at < now() - interval '30 days';
DELETE FROM segmentor_job_progress
  WHERE completion_published AND completed_at < now() - interval '30 days';
)sql";

// Times cross the wire as integer microseconds since the Unix epoch: exact both ways, unlike
// to_timestamp(double).
#define SEGMENTOR_TS_FROM_MICROS(param) \
  "('epoch'::timestamptz + " param "::float8 * interval '1 microsecond')"

#define SEGMENTOR_PROGRESS_COLUMNS                                            \
  "job_id, asset_type, expected, done, failed, batch_event_id, "              \
  "(EXTRACT(EPOCH FROM started_at) * 1000000)::bigint, "                      \
  "(EXTRACT(EPOCH FROM completed_at) * 1000000)::bigint, completion_reason, " \
  "completion_published, (EXTRACT(EPOCH FROM publish_claimed_until) * 1000000)::bigint"

constexpr const char* kEnsureRow = "segmentor_job_ensure";
constexpr const char* kLockRow = "segmentor_job_lock";
constexpr const char* kLoadRow = "segmentor_job_load";
constexpr const char* kSaveRow = "segmentor_job_save";
constexpr const char* kFindAsset = "segmentor_asset_find";
constexpr const char* kPutAsset = "segmentor_asset_put";
constexpr const char* kListOpen = "segmentor_job_list_open";
constexpr const char* kClaimUnpublished = "segmentor_job_claim_unpublished";

std::int64_t to_micros(JobTime time) {
  return std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
}

JobTime from_micros(std::int64_t micros) {
  return JobTime(std::chrono::duration_cast<JobClock::duration>(std::chrono::microseconds(micros)));
}

std::optional<std::int64_t> to_micros(const std::optional<JobTime>& time) {
  if (!time.has_value()) return std::nullopt;
  return to_micros(*time);
}

// A row of SEGMENTOR_PROGRESS_COLUMNS. Conversions throw; the caller runs this inside a guard.
struct RawProgress {
  std::string job_id;
  std::string asset_type;
  JobProgress progress;
  std::string completion_reason;
};

RawProgress read_row(const pqxx::row& row) {
  RawProgress raw;
  raw.job_id = row[0].as<std::string>();
  raw.asset_type = row[1].as<std::string>();
  JobProgress& p = raw.progress;
  if (!row[2].is_null()) p.expected = row[2].as<std::int64_t>();
  p.done = row[3].as<std::int64_t>();
  p.failed = row[4].as<std::int64_t>();
  if (!row[5].is_null()) p.batch_event_id = row[5].as<std::string>();
  if (!row[6].is_null()) p.started_at = from_micros(row[6].as<std::int64_t>());
  if (!row[7].is_null()) p.completed_at = from_micros(row[7].as<std::int64_t>());
  raw.completion_reason = row[8].is_null() ? "none" : row[8].as<std::string>();
  p.completion_published = row[9].as<bool>();
  if (!row[10].is_null()) p.publish_claimed_until = from_micros(row[10].as<std::int64_t>());
  return raw;
}

Result<std::pair<JobKey, JobProgress>> parse(RawProgress raw) {
  SEGMENTOR_ASSIGN_OR_RETURN(const AssetKind kind, parse_asset_kind(raw.asset_type));
  SEGMENTOR_ASSIGN_OR_RETURN(raw.progress.completion_reason,
                             parse_completion_reason(raw.completion_reason));
  return std::make_pair(JobKey{std::move(raw.job_id), kind}, std::move(raw.progress));
}

std::optional<std::string> reason_column(CompletionReason reason) {
  if (reason == CompletionReason::kNone) return std::nullopt;
  return std::string(to_string(reason));
}

// The asset side of PgJobStore::transact.
class PgJobTransaction final : public JobTransaction {
 public:
  PgJobTransaction(PgTxn& txn, const JobKey& key)
      : txn_(txn), key_(key), type_(to_string(key.asset_kind)) {}

  Result<std::optional<AssetOutcome>> find_asset(const std::string& asset_id) override {
    std::optional<std::string> outcome;
    SEGMENTOR_RETURN_IF_ERROR(txn_.guard("find asset " + asset_id, [&](pqxx::work& work) {
      const pqxx::result rows = work.exec_prepared(kFindAsset, key_.job_id, type_, asset_id);
      if (!rows.empty()) outcome = rows[0][0].as<std::string>();
    }));
    if (!outcome.has_value()) return std::optional<AssetOutcome>();
    SEGMENTOR_ASSIGN_OR_RETURN(const AssetOutcome parsed, parse_asset_outcome(*outcome));
    return std::optional<AssetOutcome>(parsed);
  }

  Status put_asset(const AssetRecord& record, JobTime at) override {
    const std::optional<std::string> mask_path =
        record.mask_path.empty() ? std::nullopt : std::optional<std::string>(record.mask_path);
    return txn_.guard("record asset " + record.asset_id, [&](pqxx::work& work) {
      work.exec_prepared(kPutAsset, key_.job_id, type_, record.asset_id,
                         std::string(to_string(record.outcome)), mask_path, to_micros(at));
    });
  }

 private:
  PgTxn& txn_;
  const JobKey& key_;
  const std::string type_;
};

}  // namespace

Result<std::unique_ptr<PgJobStore>> PgJobStore::create(PostgresDatabase* db) {
  if (db == nullptr) return invalid_argument("job store: no database");
  auto create_schema = [](PgTxn& txn) {
    return txn.guard("create job tables", [](pqxx::work& work) { work.exec(kSchemaSql); });
  };
  SEGMENTOR_RETURN_IF_ERROR(db->run("create job tables", create_schema));

  db->prepare(kEnsureRow,
              "INSERT INTO segmentor_job_progress (job_id, asset_type) VALUES ($1, $2) "
              "ON CONFLICT DO NOTHING");
  db->prepare(kLockRow, "SELECT " SEGMENTOR_PROGRESS_COLUMNS
                        " FROM segmentor_job_progress WHERE job_id = $1 AND asset_type = $2 "
                        "FOR UPDATE");
  db->prepare(kLoadRow, "SELECT " SEGMENTOR_PROGRESS_COLUMNS
                        " FROM segmentor_job_progress WHERE job_id = $1 AND asset_type = $2");
  db->prepare(kSaveRow,
              "UPDATE segmentor_job_progress SET expected = $3, done = $4, failed = $5, "
              "batch_event_id = $6, started_at = " SEGMENTOR_TS_FROM_MICROS("$7") ", "
              "completed_at = " SEGMENTOR_TS_FROM_MICROS("$8") ", completion_reason = $9, "
              "completion_published = $10, "
              "publish_claimed_until = " SEGMENTOR_TS_FROM_MICROS("$11") ", updated_at = now() "
              "WHERE job_id = $1 AND asset_type = $2");
  db->prepare(kFindAsset,
              "SELECT outcome FROM segmentor_processed_assets "
              "WHERE job_id = $1 AND asset_type = $2 AND asset_id = $3");
  db->prepare(kPutAsset,
              "INSERT INTO segmentor_processed_assets "
              "(job_id, asset_type, asset_id, outcome, mask_path, at) "
              "VALUES ($1, $2, $3, $4, $5, " SEGMENTOR_TS_FROM_MICROS("$6") ") "
              "ON CONFLICT (job_id, asset_type, asset_id) DO UPDATE SET "
              "outcome = EXCLUDED.outcome, mask_path = EXCLUDED.mask_path, at = EXCLUDED.at");
  db->prepare(kListOpen, "SELECT " SEGMENTOR_PROGRESS_COLUMNS
                         " FROM segmentor_job_progress "
                         "WHERE expected IS NOT NULL AND completed_at IS NULL ORDER BY started_at");
  // Note [Completion claims] (jobs/job_tracker.h): one UPDATE both finds and claims, so two
  // workers polling at once never both get a job (the second waits on the row lock, then sees
  // the new claim and skips the row under READ COMMITTED's re-check).
  db->prepare(kClaimUnpublished,
              "UPDATE segmentor_job_progress SET publish_claimed_until = " SEGMENTOR_TS_FROM_MICROS(
                  "$2") ", updated_at = now() "
              "WHERE completed_at IS NOT NULL AND NOT completion_published "
              "AND (publish_claimed_until IS NULL OR publish_claimed_until <= " SEGMENTOR_TS_FROM_MICROS(
                  "$1") ") RETURNING " SEGMENTOR_PROGRESS_COLUMNS);
  return std::unique_ptr<PgJobStore>(new PgJobStore(db));
}

Status PgJobStore::transact(const JobKey& key, const Body& body) {
  const std::string type(to_string(key.asset_kind));
  const std::string what = "job " + to_string(key);
  auto run_body = [&](PgTxn& txn) -> Status {
    RawProgress raw;
    SEGMENTOR_RETURN_IF_ERROR(txn.guard(what, [&](pqxx::work& work) {
      work.exec_prepared(kEnsureRow, key.job_id, type);
      raw = read_row(work.exec_prepared1(kLockRow, key.job_id, type));
    }));
    SEGMENTOR_ASSIGN_OR_RETURN(auto parsed, parse(std::move(raw)));
    JobProgress& progress = parsed.second;

    PgJobTransaction assets(txn, key);
    SEGMENTOR_RETURN_IF_ERROR(body(progress, assets));

    return txn.guard(what, [&](pqxx::work& work) {
      work.exec_prepared(kSaveRow, key.job_id, type, progress.expected, progress.done,
                         progress.failed, progress.batch_event_id, to_micros(progress.started_at),
                         to_micros(progress.completed_at),
                         reason_column(progress.completion_reason), progress.completion_published,
                         to_micros(progress.publish_claimed_until));
    });
  };
  return db_->run(what, run_body);
}

Result<std::optional<JobProgress>> PgJobStore::load(const JobKey& key) {
  const std::string type(to_string(key.asset_kind));
  std::optional<RawProgress> raw;
  auto read = [&](PgTxn& txn) {
    return txn.guard("load job", [&](pqxx::work& work) {
      raw.reset();
      const pqxx::result rows = work.exec_prepared(kLoadRow, key.job_id, type);
      if (!rows.empty()) raw = read_row(rows[0]);
    });
  };
  SEGMENTOR_RETURN_IF_ERROR(db_->run("load job " + to_string(key), read));
  if (!raw.has_value()) return std::optional<JobProgress>();
  SEGMENTOR_ASSIGN_OR_RETURN(auto parsed, parse(std::move(*raw)));
  return std::optional<JobProgress>(std::move(parsed.second));
}

Result<std::vector<std::pair<JobKey, JobProgress>>> PgJobStore::list(
    const char* statement, std::optional<std::pair<std::int64_t, std::int64_t>> claim) {
  std::vector<RawProgress> raws;
  auto read = [&](PgTxn& txn) {
    return txn.guard("list jobs", [&](pqxx::work& work) {
      raws.clear();
      const pqxx::result rows = claim ? work.exec_prepared(statement, claim->first, claim->second)
                                      : work.exec_prepared(statement);
      for (const auto& row : rows) raws.push_back(read_row(row));
    });
  };
  SEGMENTOR_RETURN_IF_ERROR(db_->run("list jobs", read));
  std::vector<std::pair<JobKey, JobProgress>> jobs;
  jobs.reserve(raws.size());
  for (RawProgress& raw : raws) {
    SEGMENTOR_ASSIGN_OR_RETURN(auto parsed, parse(std::move(raw)));
    jobs.push_back(std::move(parsed));
  }
  return jobs;
}

Result<std::vector<std::pair<JobKey, JobProgress>>> PgJobStore::list_open_jobs() {
  return list(kListOpen);
}

Result<std::vector<std::pair<JobKey, JobProgress>>> PgJobStore::claim_unpublished_completions(
    JobTime now, JobClock::duration lease) {
  return list(kClaimUnpublished, std::make_pair(to_micros(now), to_micros(now + lease)));
}

Result<std::optional<std::string>> PgJobStore::recorded_mask_path(const JobKey& key,
                                                                  const std::string& asset_id) {
  const std::string type(to_string(key.asset_kind));
  std::optional<std::string> path;
  auto read = [&](PgTxn& txn) {
    return txn.guard("read mask path", [&](pqxx::work& work) {
      path.reset();
      const pqxx::result rows =
          work.exec("SELECT mask_path FROM segmentor_processed_assets WHERE job_id = " +
                    work.quote(key.job_id) + " AND asset_type = " + work.quote(type) +
                    " AND asset_id = " + work.quote(asset_id) + " AND outcome = 'done'");
      if (!rows.empty() && !rows[0][0].is_null()) path = rows[0][0].as<std::string>();
    });
  };
  SEGMENTOR_RETURN_IF_ERROR(db_->run("read mask path", read));
  return path;
}

#undef SEGMENTOR_PROGRESS_COLUMNS
#undef SEGMENTOR_TS_FROM_MICROS

}  // namespace segmentor
