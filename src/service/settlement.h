// Settlement: the one decision of what becomes of a delivery once it has been handled — ack,
// retry through the broker's schedule, dead-letter, or leave unacked for the broker. Pure policy
// (no broker, no database), so every path of it is unit-tested in one place; Worker::settle
// carries the decision out. See Note [One settle point].
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "jobs/job_types.h"
#include "messaging/wire_format.h"

namespace segmentor::service {

// Note [One settle point]
// ~~~~~~~~~~~~~~~~~~~~~~~
// Every handler ends by building an Outcome and calling Worker::settle exactly once; no handler
// acks, retries or dead-letters on its own. The policy:
//   - ok (every asset handled, its progress recorded): ack;
//   - the worker is shutting down and the failure is transient (typically the database could
//     not be reached before the grace period ended): leave it unacked; the broker redelivers it
//     once the connection closes, and every step is idempotent;
//   - transient, retries left (x-retry-count below RetryPolicy::max_retries): the broker's retry
//     schedule (republished to our own queue after a delay and acked in the same transaction,
//     so a lost connection or a killed worker never forks it into two retry chains: Note
//     [Republish and ack commit together] in messaging/broker_client.cpp);
//   - anything else — permanent, malformed, or transient with the retries used up: dead-letter.
// Before a dead-letter the message's assets are recorded as failed (the tracker is idempotent by
// asset id), so an acked message always has its progress counted. If that record cannot reach
// the database during shutdown the message is left unacked instead; if it fails for another
// reason (an id the tracker refuses) the dead-letter still happens, with the reason logged:
// every message ends somewhere. A retry records nothing: the next attempt may still succeed.

// x-error-type values.
inline constexpr std::string_view kInvalidInput = "InvalidInput";
inline constexpr std::string_view kProcessingError = "ProcessingError";
inline constexpr std::string_view kTransientError = "TransientError";
inline constexpr std::string_view kDatabaseError = "DatabaseError";
inline constexpr std::string_view kRedeliveredTooOften = "RedeliveredTooOften";

// Worth another try later: the memory ladder gave up, the filesystem, the database or a library
// hiccuped. A missing or undecodable file, a bad id, a size limit or a task that threw stays
// wrong however often we try (ErrorCode::kInternal from a throwing task is marked permanent by
// the engine, see Note [Exceptions stop at the engine]).
bool is_transient(ErrorCode code);

// What handling a message came to.
struct Outcome {
  Status status;                    // ok: done and recorded
  std::string_view error_type;      // x-error-type when not ok
  bool transient = false;           // another delivery may succeed
  std::optional<JobKey> key;        // the job the assets below belong to
  std::vector<AssetRecord> failed;  // recorded as failed before a dead-letter
  // A retry republishes this body instead of the delivery's (e.g. only the frames that failed).
  std::optional<std::string> retry_body;

  static Outcome Done() { return {}; }
  static Outcome Malformed(Status why);
  // A failure; transient when `why`'s code is.
  static Outcome Failed(Status why, std::string_view error_type);
};

enum class Settlement { kAck, kRetry, kDeadLetter, kLeave };
std::string_view to_string(Settlement settlement);

// The decision of Note [One settle point]. `retry_count` is the delivery's x-retry-count;
// `shutting_down` is true once the worker gives up on its messages.
Settlement decide(const Outcome& outcome, std::int64_t retry_count,
                  const messaging::RetryPolicy& retry, bool shutting_down);

}  // namespace segmentor::service
