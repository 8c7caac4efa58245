#include "common/text.h"

#include <cstdio>
#include <ctime>

namespace segmentor {
namespace {

bool starts_code_point(char c) { return (static_cast<unsigned char>(c) & 0xC0U) != 0x80U; }

}  // namespace

std::size_t utf8_length(std::string_view text) {
  std::size_t count = 0;
  for (const char c : text) count += starts_code_point(c) ? 1 : 0;
  return count;
}

std::string truncate_utf8(std::string_view text, std::size_t max_chars) {
  std::size_t chars = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (starts_code_point(text[i])) {
      if (chars == max_chars) return std::string(text.substr(0, i));
      ++chars;
    }
  }
  return std::string(text);
}

std::string utc_iso8601(std::chrono::system_clock::time_point when, IsoPrecision precision) {
  using namespace std::chrono;
  auto micros = duration_cast<microseconds>(when.time_since_epoch()).count();
  auto seconds = micros / 1'000'000;
  auto fraction = micros % 1'000'000;
  if (fraction < 0) {  // before 1970: floor, not truncate
    fraction += 1'000'000;
    seconds -= 1;
  }
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[96];  // generous: the compiler cannot bound tm_year
  if (precision == IsoPrecision::kSeconds) {
    std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  } else {
    std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<long long>(fraction));
  }
  return buffer;
}

}  // namespace segmentor
