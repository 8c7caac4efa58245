#include "service/settlement.h"

#include <utility>

#include "messaging/events.h"

namespace segmentor::service {

bool is_transient(ErrorCode code) {
  return code == ErrorCode::kOutOfMemory || code == ErrorCode::kUnavailable ||
         code == ErrorCode::kIo || code == ErrorCode::kInternal;
}

Outcome Outcome::Malformed(Status why) {
  Outcome outcome;
  outcome.status = std::move(why);
  outcome.error_type = messaging::kMalformedMessage;
  return outcome;
}

Outcome Outcome::Failed(Status why, std::string_view error_type) {
  Outcome outcome;
  outcome.transient = is_transient(why.code());
  outcome.status = std::move(why);
  outcome.error_type = error_type;
  return outcome;
}

std::string_view to_string(Settlement settlement) {
  switch (settlement) {
    case Settlement::kAck:
      return "ack";
    case Settlement::kRetry:
      return "retry";
    case Settlement::kDeadLetter:
      return "dead-letter";
    case Settlement::kLeave:
      return "leave";
  }
  return "?";
}

Settlement decide(const Outcome& outcome, std::int64_t retry_count,
                  const messaging::RetryPolicy& retry, bool shutting_down) {
  if (outcome.status.ok()) return Settlement::kAck;
  if (outcome.transient) {
    if (shutting_down) return Settlement::kLeave;
    if (!messaging::retries_exhausted(retry, retry_count)) return Settlement::kRetry;
  }
  return Settlement::kDeadLetter;
}

}  // namespace segmentor::service
