// The broker-side wire format of CONTRACT §1, as pure functions: names of the exchange and queues,
// the `_metadata` block, correlation ids, retry and dead-letter headers. No I/O, no rabbitmq-c:
// everything here is unit-tested without a broker.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"
#include "common/text.h"

namespace segmentor::messaging {

inline constexpr std::string_view kExchange = "product_video_matching";
inline constexpr std::string_view kRetryCountHeader = "x-retry-count";
inline constexpr std::string_view kOriginalTopicHeader = "x-original-topic";
inline constexpr std::string_view kFailureReasonHeader = "x-failure-reason";
inline constexpr std::string_view kErrorTypeHeader = "x-error-type";
// CONTRACT §1: x-failure-reason is at most 500 characters (code points, as Python's len()).
inline constexpr std::size_t kMaxFailureReasonChars = 500;

// "queue.<topic>": the worker's own queue for a subscription.
std::string queue_for(std::string_view topic);
// "queue.<topic>.dlq": where messages of `topic` go when they cannot be processed.
std::string dead_letter_queue_for(std::string_view topic);
// The two job-level topics end in ".batch"; they get prefetch 1.
bool is_batch_topic(std::string_view topic);
// CONTRACT §1 prefetch: 1 for `.batch` topics, `max_concurrent_batches` (at least 1) otherwise.
int prefetch_for(std::string_view topic, int max_concurrent_batches);

// A random (version 4) UUID in canonical lowercase form. Thread-safe.
std::string uuid4();
// Timestamps: segmentor::utc_iso8601 (common/text.h), microseconds.

// The body to publish: `payload` (which must be a JSON object) plus
// "_metadata": {"timestamp", "correlation_id", "topic"}. A `_metadata` already in the payload is
// replaced, so a forwarded payload never carries its input's metadata.
Result<nlohmann::json> with_metadata(nlohmann::json payload, std::string_view topic,
                                     std::string_view correlation_id,
                                     std::chrono::system_clock::time_point now);

// The correlation id to propagate for an incoming message: the AMQP property if non-empty, else
// a non-empty string `_metadata.correlation_id` of the body (`body` may be null or any JSON),
// else a fresh uuid4.
std::string resolve_correlation_id(std::string_view property, const nlohmann::json* body);

// AMQP header values we read and write. Other kinds (tables, arrays, bytes) found on incoming
// messages are not carried over when a message is republished.
using HeaderValue = std::variant<std::int64_t, std::string, bool, double>;
struct Header {
  std::string key;
  HeaderValue value;
  bool operator==(const Header&) const = default;
};
using Headers = std::vector<Header>;

const HeaderValue* find_header(const Headers& headers, std::string_view key);
// `key` as a non-negative integer (integer kinds, or a string of digits); nullopt otherwise.
std::optional<std::int64_t> header_int(const Headers& headers, std::string_view key);
// Sets `key`, replacing an existing entry (keeps its position) or appending.
void set_header(Headers& headers, std::string_view key, HeaderValue value);

// Failure reasons are cut with segmentor::truncate_utf8 (common/text.h).

// Note [Retry schedule]
// A transient failure is republished to the worker's own queue after 1 s, 2 s, 4 s: the delay
// for a message that has already been retried `n` times is base × 2^n. A message whose
// x-retry-count has reached max_retries and fails again goes to the dead-letter queue. The
// original stays unacked during the delay (it holds a prefetch slot) and is acked only after the
// republish is confirmed, so a crash at any point leaves at least one copy in the broker.
struct RetryPolicy {
  int max_retries = 3;
  std::chrono::milliseconds base_delay{1000};
};
// Delay before republishing a message that carries x-retry-count = `retry_count`.
std::chrono::milliseconds retry_delay(const RetryPolicy& policy, std::int64_t retry_count);
// True when a message with this retry count must go to the dead-letter queue on failure.
bool retries_exhausted(const RetryPolicy& policy, std::int64_t retry_count);

// `original` with x-retry-count = `next_retry_count`.
Headers retry_headers(const Headers& original, std::int64_t next_retry_count);
// `original` plus x-original-topic, x-failure-reason (truncated), x-error-type, x-retry-count.
Headers dead_letter_headers(const Headers& original, std::string_view topic,
                            std::string_view reason, std::string_view error_type,
                            std::int64_t retry_count);

}  // namespace segmentor::messaging
