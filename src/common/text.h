// Small text helpers several layers need, kept in one place: UTF-8 code-point counting (what a
// VARCHAR(n) column and the AMQP failure-reason limit count) and the one UTC ISO-8601 formatter.
//
// Thread-safety: stateless, callable from any thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace segmentor {

// Characters (UTF-8 code points) in `text`: every byte that is not a continuation byte
// (10xxxxxx) starts one. Invalid sequences count as the bytes that start them.
std::size_t utf8_length(std::string_view text);

// `text` cut to at most `max_chars` code points, never inside one.
std::string truncate_utf8(std::string_view text, std::size_t max_chars);

enum class IsoPrecision { kSeconds, kMicroseconds };

// "2024-05-01T12:34:56.789012Z" (kMicroseconds) or "2024-05-01T12:34:56Z" (kSeconds): UTC, 'Z'
// suffix; times before 1970 round down.
std::string utc_iso8601(std::chrono::system_clock::time_point when,
                        IsoPrecision precision = IsoPrecision::kMicroseconds);

}  // namespace segmentor
