// Strict parsers for one configuration value each. Internal to the config module.
//
// Each returns the parsed value, or an error whose message is the *tail* of an operator-facing
// sentence ("is not a boolean (use ...)"): the caller prefixes "NAME='value' " so that every
// message names the variable and the value, and so that secrets can be masked in one place.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace segmentor::config_internal {

// Leading and trailing spaces and tabs removed.
std::string_view trim(std::string_view text);

// 1/true/yes/on and 0/false/no/off, any case, surrounding blanks ignored.
Result<bool> parse_bool(std::string_view text);

// A whole decimal integer (optional sign, surrounding blanks ignored) within [min, max].
Result<std::int64_t> parse_integer(std::string_view text, std::int64_t min, std::int64_t max);

// A whole finite decimal number (no "nan", "inf", or trailing junk), surrounding blanks ignored.
// Range checks are the caller's, because the bounds differ in openness.
Result<double> parse_number(std::string_view text);

// A mask folder below DATA_ROOT_CONTAINER: relative, no "..", leading "./" and empty or "."
// components dropped, so "./masks_foreground/" becomes "masks_foreground".
Result<std::string> parse_relative_path(std::string_view text);

// An absolute path, lexically normalised, without a trailing separator (except "/").
Result<std::filesystem::path> parse_absolute_path(std::string_view text);

// ':'-separated absolute paths. An empty text is an empty list; an empty entry is an error.
Result<std::vector<std::filesystem::path>> parse_path_list(std::string_view text);

// auto | cpu | cuda | cuda:N (any case), normalised to lower case and a plain N ("cuda:01" ->
// "cuda:1").
Result<std::string> parse_device(std::string_view text);

// DEBUG | INFO | WARNING | WARN | ERROR | CRITICAL (any case) -> upper case, WARN -> WARNING.
Result<std::string> parse_log_level(std::string_view text);

// json | text (any case) -> lower case.
Result<std::string> parse_log_format(std::string_view text);
// pool | worker | default (CUDA_STREAMS), lower-cased.
Result<std::string> parse_cuda_streams(std::string_view text);
// throughput | off (CONCURRENCY_TUNING), lower-cased.
Result<std::string> parse_concurrency_tuning(std::string_view text);

// A non-empty value, kept verbatim.
Result<std::string> parse_required_string(std::string_view text);

// An AMQP URL: amqp:// or amqps://, kept verbatim.
Result<std::string> parse_amqp_url(std::string_view text);

// Shortest decimal text that reads back as the same double ("0.85", "90").
std::string format_number(double value);

}  // namespace segmentor::config_internal
