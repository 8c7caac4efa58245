// DeliveryLog: how often the broker has redelivered a message, shared by every replica through
// PostgreSQL, so that a message that kills (or hangs) whichever worker takes it is recognised and
// dead-lettered instead of taking the whole fleet down one replica at a time.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "storage/postgres.h"

namespace segmentor {

// Note [Counting redeliveries]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// x-retry-count only moves when a worker settles a message with a retry. A worker that crashes
// (or is SIGKILLed) on a message settles nothing: the broker hands the message to the next
// consumer with the `redelivered` flag set, and the count never moves. The flag alone does not
// say how many times, and a classic queue keeps no count, so the worker keeps one: each delivery
// that arrives flagged is counted in segmentor_redeliveries under a fingerprint of its queue and
// body (FNV-1a 64, the same on every replica), and once the count passes the limit the message is
// dead-lettered (RedeliveredTooOften) before any of it runs. Unflagged deliveries cost nothing.
// A graceful shutdown with messages in flight also counts once per message — bounded by the limit
// and harmless. Rows are kept `retention` after their last redelivery, then removed at start-up.

struct DeliveryLogOptions {
  std::chrono::hours retention{24 * 7};
};

// Thread-safe (the database serialises). Does not own `db`, which must outlive it.
class DeliveryLog {
 public:
  // Creates segmentor_redeliveries if missing, removes rows past the retention, prepares.
  static Result<std::unique_ptr<DeliveryLog>> create(PostgresDatabase* db,
                                                     const DeliveryLogOptions& options = {});

  // Counts one more redelivery of (queue, body); returns the count including this one (1 the
  // first time a message comes back).
  Result<int> note_redelivery(std::string_view queue, std::string_view body);

 private:
  explicit DeliveryLog(PostgresDatabase* db) : db_(db) {}
  PostgresDatabase* const db_;
};

// The fingerprint of Note [Counting redeliveries]: 16 hex digits.
std::string delivery_fingerprint(std::string_view queue, std::string_view body);

}  // namespace segmentor
