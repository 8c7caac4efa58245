#include "storage/delivery_log.h"

#include <cstdint>
#include <cstdio>

#include "storage/pg_txn.h"

namespace segmentor {
namespace {

constexpr const char* kSchemaSql = R"sql(
SELECT pg_advisory_xact_lock(8317500118);
CREATE TABLE IF NOT EXISTS segmentor_redeliveries (
  fingerprint TEXT        PRIMARY KEY,
  queue       TEXT        NOT NULL,
  deliveries  INTEGER     NOT NULL,
  last_seen   TIMESTAMPTZ NOT NULL DEFAULT now()
);
)sql";

constexpr const char* kNote = "segmentor_redelivery_note";

}  // namespace

std::string delivery_fingerprint(std::string_view queue, std::string_view body) {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  auto mix = [&hash](std::string_view bytes) {
    for (const char c : bytes) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 0x100000001b3ULL;
    }
  };
  mix(queue);
  mix(std::string_view("\0", 1));
  mix(body);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

Result<std::unique_ptr<DeliveryLog>> DeliveryLog::create(PostgresDatabase* db,
                                                         const DeliveryLogOptions& options) {
  if (db == nullptr) return invalid_argument("delivery log: no database");
  const std::string prune = "DELETE FROM segmentor_redeliveries WHERE last_seen < now() - " +
                            std::to_string(options.retention.count()) + " * interval '1 hour'";
  SEGMENTOR_RETURN_IF_ERROR(db->run("create the redelivery table", [&](PgTxn& txn) {
    return txn.guard("create the redelivery table", [&](pqxx::work& work) {
      work.exec(kSchemaSql);
      work.exec(prune);
    });
  }));
  db->prepare(kNote,
              "INSERT INTO segmentor_redeliveries (fingerprint, queue, deliveries) "
              "VALUES ($1, $2, 1) ON CONFLICT (fingerprint) DO UPDATE SET "
              "deliveries = segmentor_redeliveries.deliveries + 1, last_seen = now() "
              "RETURNING deliveries");
  return std::unique_ptr<DeliveryLog>(new DeliveryLog(db));
}

Result<int> DeliveryLog::note_redelivery(std::string_view queue, std::string_view body) {
  const std::string fingerprint = delivery_fingerprint(queue, body);
  const std::string queue_name(queue);
  int count = 0;
  SEGMENTOR_RETURN_IF_ERROR(db_->run("count a redelivery", [&](PgTxn& txn) {
    return txn.guard("count a redelivery", [&](pqxx::work& work) {
      count = work.exec_prepared1(kNote, fingerprint, queue_name)[0].as<int>();
    });
  }));
  return count;
}

}  // namespace segmentor
