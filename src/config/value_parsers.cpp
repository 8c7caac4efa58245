#include "config/value_parsers.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <limits>
#include <system_error>

namespace segmentor::config_internal {
namespace {

constexpr std::string_view kEmpty = "is empty (unset it to use the default)";

std::string to_lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string to_upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

// from_chars rejects a leading '+', which people (and Python's int()) accept.
std::string_view drop_plus(std::string_view text) {
  if (text.size() > 1 && text.front() == '+' && text[1] != '-' && text[1] != '+') {
    text.remove_prefix(1);
  }
  return text;
}

// One of `choices` (lower-case), whatever its case; otherwise "is not a <what> (use a, b or c)".
Result<std::string> parse_choice(std::string_view text,
                                 std::initializer_list<std::string_view> choices,
                                 std::string_view what) {
  text = trim(text);
  if (text.empty()) return invalid_argument(std::string(kEmpty));
  const std::string lower = to_lower(text);
  if (std::find(choices.begin(), choices.end(), lower) != choices.end()) return lower;
  std::string listed;
  std::size_t index = 0;
  for (const std::string_view choice : choices) {
    if (index > 0) listed += index + 1 == choices.size() ? " or " : ", ";
    listed += choice;
    ++index;
  }
  return invalid_argument("is not a " + std::string(what) + " (use " + listed + ")");
}

std::string range_message(std::int64_t min, std::int64_t max) {
  const bool unbounded_above =
      max == std::numeric_limits<std::int64_t>::max() || max == std::numeric_limits<int>::max();
  if (unbounded_above) return "is out of range (must be at least " + std::to_string(min) + ")";
  return "is out of range (must be between " + std::to_string(min) + " and " + std::to_string(max) +
         ")";
}

}  // namespace

std::string_view trim(std::string_view text) {
  const auto blank = [](char c) { return c == ' ' || c == '\t'; };
  while (!text.empty() && blank(text.front())) text.remove_prefix(1);
  while (!text.empty() && blank(text.back())) text.remove_suffix(1);
  return text;
}

Result<bool> parse_bool(std::string_view text) {
  text = trim(text);
  if (text.empty()) return invalid_argument(std::string(kEmpty));
  const std::string lower = to_lower(text);
  if (lower == "1" || lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "0" || lower == "false" || lower == "no" || lower == "off") return false;
  return invalid_argument("is not a boolean (use true/false, 1/0, yes/no, on/off)");
}

Result<std::int64_t> parse_integer(std::string_view text, std::int64_t min, std::int64_t max) {
  text = drop_plus(trim(text));
  if (text.empty()) return invalid_argument(std::string(kEmpty));
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec == std::errc::result_out_of_range) return invalid_argument(range_message(min, max));
  if (ec != std::errc() || ptr != end) return invalid_argument("is not an integer");
  if (value < min || value > max) return invalid_argument(range_message(min, max));
  return value;
}

Result<double> parse_number(std::string_view text) {
  text = drop_plus(trim(text));
  if (text.empty()) return invalid_argument(std::string(kEmpty));
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value, std::chars_format::general);
  if (ec == std::errc::result_out_of_range) return invalid_argument("is out of range");
  if (ec != std::errc() || ptr != end || !std::isfinite(value)) {
    return invalid_argument("is not a number");
  }
  return value;
}

Result<std::string> parse_relative_path(std::string_view text) {
  text = trim(text);
  if (text.empty()) return invalid_argument(std::string(kEmpty));
  if (text.front() == '/') {
    return invalid_argument("must be a relative path (a folder below DATA_ROOT_CONTAINER)");
  }
  std::string out;
  while (!text.empty()) {
    const std::size_t slash = text.find('/');
    const std::string_view part = text.substr(0, slash);
    text = slash == std::string_view::npos ? std::string_view() : text.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") return invalid_argument("must not contain '..'");
    if (!out.empty()) out += '/';
    out += part;
  }
  if (out.empty()) return invalid_argument("names no folder (use e.g. masks_foreground)");
  return out;
}

Result<std::filesystem::path> parse_absolute_path(std::string_view text) {
  text = trim(text);
  if (text.empty()) return invalid_argument(std::string(kEmpty));
  if (text.front() != '/') return invalid_argument("is not an absolute path");
  std::filesystem::path path = std::filesystem::path(text).lexically_normal();
  // lexically_normal keeps a trailing separator as an empty file name; "/a/b/" -> "/a/b".
  if (!path.has_filename() && path != path.root_path()) path = path.parent_path();
  return path;
}

Result<std::vector<std::filesystem::path>> parse_path_list(std::string_view text) {
  std::vector<std::filesystem::path> out;
  if (trim(text).empty()) return out;
  while (true) {
    const std::size_t colon = text.find(':');
    const std::string_view entry = trim(text.substr(0, colon));
    if (entry.empty()) return invalid_argument("has an empty entry (entries are ':'-separated)");
    auto path = parse_absolute_path(entry);
    if (!path.ok()) {
      return invalid_argument("has an entry '" + std::string(entry) + "' that " +
                              path.status().message());
    }
    out.push_back(std::move(path).value());
    if (colon == std::string_view::npos) break;
    text.remove_prefix(colon + 1);
  }
  return out;
}

Result<std::string> parse_device(std::string_view text) {
  text = trim(text);
  if (text.empty()) return invalid_argument(std::string(kEmpty));
  const std::string lower = to_lower(text);
  if (lower == "auto" || lower == "cpu" || lower == "cuda") return lower;
  constexpr std::string_view kCudaPrefix = "cuda:";
  if (lower.starts_with(kCudaPrefix)) {
    const std::string_view index = std::string_view(lower).substr(kCudaPrefix.size());
    // Digits only: "cuda:+1" or "cuda: 1" would be accepted by parse_integer but are typos.
    const bool digits = !index.empty() && std::all_of(index.begin(), index.end(),
                                                      [](char c) { return c >= '0' && c <= '9'; });
    if (digits) {
      auto n = parse_integer(index, 0, std::numeric_limits<int>::max());
      if (n.ok()) return std::string(kCudaPrefix) + std::to_string(*n);
    }
  }
  return invalid_argument("is not a device (use auto, cpu, cuda or cuda:N)");
}

Result<std::string> parse_log_level(std::string_view text) {
  text = trim(text);
  if (text.empty()) return invalid_argument(std::string(kEmpty));
  const std::string upper = to_upper(text);
  if (upper == "WARN") return std::string("WARNING");
  constexpr std::array<std::string_view, 5> kLevels = {"DEBUG", "INFO", "WARNING", "ERROR",
                                                       "CRITICAL"};
  if (std::find(kLevels.begin(), kLevels.end(), upper) != kLevels.end()) return upper;
  return invalid_argument("is not a log level (use DEBUG, INFO, WARNING, ERROR or CRITICAL)");
}

Result<std::string> parse_log_format(std::string_view text) {
  return parse_choice(text, {"json", "text"}, "log format");
}

Result<std::string> parse_cuda_streams(std::string_view text) {
  return parse_choice(text, {"pool", "worker", "default"}, "stream mode");
}

Result<std::string> parse_concurrency_tuning(std::string_view text) {
  return parse_choice(text, {"throughput", "off"}, "tuning mode");
}

Result<std::string> parse_required_string(std::string_view text) {
  text = trim(text);
  if (text.empty()) return invalid_argument(std::string(kEmpty));
  return std::string(text);
}

Result<std::string> parse_amqp_url(std::string_view text) {
  text = trim(text);
  if (text.empty()) return invalid_argument(std::string(kEmpty));
  const std::string lower = to_lower(text.substr(0, 8));
  if (!lower.starts_with("amqp://") && !lower.starts_with("amqps://")) {
    return invalid_argument("is not an AMQP URL (use amqp://user:password@host:port/vhost)");
  }
  return std::string(text);
}

std::string format_number(double value) {
  std::array<char, 64> buffer{};
  const auto [ptr, ec] = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  if (ec != std::errc()) return std::to_string(value);
  return {buffer.data(), ptr};
}

}  // namespace segmentor::config_internal
