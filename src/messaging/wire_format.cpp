#include "messaging/wire_format.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <random>

#include "messaging/name_uuid.h"

namespace segmentor::messaging {

std::string queue_for(std::string_view topic) { return "queue." + std::string(topic); }

std::string dead_letter_queue_for(std::string_view topic) {
  return "queue." + std::string(topic) + ".dlq";
}

bool is_batch_topic(std::string_view topic) {
  constexpr std::string_view kSuffix = ".batch";
  return topic.size() >= kSuffix.size() &&
         topic.substr(topic.size() - kSuffix.size()) == kSuffix;
}

int prefetch_for(std::string_view topic, int max_concurrent_batches) {
  if (is_batch_topic(topic)) return 1;
  return std::max(1, max_concurrent_batches);
}

std::string uuid4() {
  // One generator per thread, seeded from the OS: no lock, no shared state.
  thread_local std::mt19937_64 generator = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  UuidBytes bytes{};
  for (std::size_t i = 0; i < bytes.size(); i += 8) {
    std::uint64_t word = generator();
    for (std::size_t j = 0; j < 8; ++j) bytes[i + j] = static_cast<std::uint8_t>(word >> (8 * j));
  }
  bytes[6] = static_cast<std::uint8_t>((bytes[6] & 0x0F) | 0x40);  // version 4
  bytes[8] = static_cast<std::uint8_t>((bytes[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return format_uuid(bytes);
}

Result<nlohmann::json> with_metadata(nlohmann::json payload, std::string_view topic,
                                     std::string_view correlation_id,
                                     std::chrono::system_clock::time_point now) {
  if (!payload.is_object()) {
    return invalid_argument("event payload for '" + std::string(topic) +
                            "' must be a JSON object, got " + payload.type_name());
  }
  payload["_metadata"] = {{"timestamp", utc_iso8601(now)},
                          {"correlation_id", std::string(correlation_id)},
                          {"topic", std::string(topic)}};
  return payload;
}

std::string resolve_correlation_id(std::string_view property, const nlohmann::json* body) {
  if (!property.empty()) return std::string(property);
  if (body != nullptr && body->is_object()) {
    auto metadata = body->find("_metadata");
    if (metadata != body->end() && metadata->is_object()) {
      auto id = metadata->find("correlation_id");
      if (id != metadata->end() && id->is_string() && !id->get_ref<const std::string&>().empty()) {
        return id->get<std::string>();
      }
    }
  }
  return uuid4();
}

const HeaderValue* find_header(const Headers& headers, std::string_view key) {
  for (const Header& header : headers) {
    if (header.key == key) return &header.value;
  }
  return nullptr;
}

std::optional<std::int64_t> header_int(const Headers& headers, std::string_view key) {
  const HeaderValue* value = find_header(headers, key);
  if (value == nullptr) return std::nullopt;
  if (const auto* number = std::get_if<std::int64_t>(value)) {
    if (*number >= 0) return *number;
    return std::nullopt;
  }
  if (const auto* text = std::get_if<std::string>(value)) {
    if (text->empty() || text->size() > 18) return std::nullopt;
    std::int64_t result = 0;
    for (char c : *text) {
      if (c < '0' || c > '9') return std::nullopt;
      result = result * 10 + (c - '0');
    }
    return result;
  }
  return std::nullopt;
}

void set_header(Headers& headers, std::string_view key, HeaderValue value) {
  for (Header& header : headers) {
    if (header.key == key) {
      header.value = std::move(value);
      return;
    }
  }
  headers.push_back(Header{std::string(key), std::move(value)});
}

std::chrono::milliseconds retry_delay(const RetryPolicy& policy, std::int64_t retry_count) {
  std::int64_t exponent = std::clamp<std::int64_t>(retry_count, 0, 20);
  return policy.base_delay * (std::int64_t{1} << exponent);
}

bool retries_exhausted(const RetryPolicy& policy, std::int64_t retry_count) {
  return retry_count >= policy.max_retries;
}

Headers retry_headers(const Headers& original, std::int64_t next_retry_count) {
  Headers headers = original;
  set_header(headers, kRetryCountHeader, next_retry_count);
  return headers;
}

Headers dead_letter_headers(const Headers& original, std::string_view topic,
                            std::string_view reason, std::string_view error_type,
                            std::int64_t retry_count) {
  Headers headers = original;
  set_header(headers, kOriginalTopicHeader, std::string(topic));
  set_header(headers, kFailureReasonHeader, truncate_utf8(reason, kMaxFailureReasonChars));
  set_header(headers, kErrorTypeHeader, std::string(error_type));
  set_header(headers, kRetryCountHeader, retry_count);
  return headers;
}

}  // namespace segmentor::messaging
