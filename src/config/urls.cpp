// URL handling for configuration values: masking passwords for display, building the libpq URI.
//
// Note [Masking errs towards hiding]
// Operators paste URLs with unencoded passwords ("amqp://u:p@ss@host/"), which are not valid URLs
// but do reach us. The user-info therefore ends at the *last* '@' of the string, not the first:
// a password holding '@', '/', '?' or '#' is still masked whole. The price is that a rare URL with
// an '@' in its path or query is masked too much, which is harmless; masking too little is not.
#include <algorithm>
#include <cctype>
#include <cstdio>

#include "config/config.h"

namespace segmentor {
namespace {

constexpr std::string_view kMask = "***";

bool iequals_at(std::string_view text, std::size_t pos, std::string_view word) {
  if (pos + word.size() > text.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[pos + i])) != word[i]) return false;
  }
  return true;
}

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// URI query: every "password=value" parameter after `query_start` (the '?').
void mask_query_passwords(std::string& url, std::size_t query_start) {
  constexpr std::string_view kKey = "password=";
  for (std::size_t pos = query_start + 1; pos < url.size(); ++pos) {
    if ((url[pos - 1] != '?' && url[pos - 1] != '&') || !iequals_at(url, pos, kKey)) continue;
    const std::size_t value_start = pos + kKey.size();
    std::size_t value_end = url.find_first_of("&#", value_start);
    if (value_end == std::string::npos) value_end = url.size();
    url.replace(value_start, value_end - value_start, kMask);
    pos = value_start + kMask.size() - 1;
  }
}

// libpq key/value form: password=secret or password = 'it''s \' quoted'.
void mask_keyword_passwords(std::string& dsn) {
  constexpr std::string_view kKey = "password";
  for (std::size_t pos = 0; pos < dsn.size(); ++pos) {
    if ((pos > 0 && !is_blank(dsn[pos - 1])) || !iequals_at(dsn, pos, kKey)) continue;
    std::size_t i = pos + kKey.size();
    while (i < dsn.size() && is_blank(dsn[i])) ++i;
    if (i >= dsn.size() || dsn[i] != '=') continue;
    ++i;
    while (i < dsn.size() && is_blank(dsn[i])) ++i;
    const std::size_t value_start = i;
    if (i < dsn.size() && dsn[i] == '\'') {
      ++i;
      while (i < dsn.size() && dsn[i] != '\'') i += (dsn[i] == '\\' && i + 1 < dsn.size()) ? 2 : 1;
      if (i < dsn.size()) ++i;  // the closing quote
    } else {
      while (i < dsn.size() && !is_blank(dsn[i])) ++i;
    }
    const std::size_t value_end = std::min(i, dsn.size());
    if (value_end == value_start) continue;
    dsn.replace(value_start, value_end - value_start, kMask);
    pos = value_start + kMask.size() - 1;
  }
}

// RFC 3986 unreserved characters pass; everything else becomes %XX.
std::string percent_encode(std::string_view text) {
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "%%%02X", static_cast<unsigned>(u));
      out += hex;
    }
  }
  return out;
}

}  // namespace

std::string mask_url_password(std::string_view url) {
  std::string out(url);
  const std::size_t scheme_end = out.find("://");
  if (scheme_end == std::string::npos) {
    mask_keyword_passwords(out);
    return out;
  }
  const std::size_t authority = scheme_end + 3;
  const std::size_t at = out.rfind('@');  // Note [Masking errs towards hiding]
  if (at != std::string::npos && at >= authority) {
    const std::size_t colon = out.find(':', authority);
    if (colon != std::string::npos && colon < at) {
      out.replace(colon + 1, at - colon - 1, kMask);
    }
  }
  const std::size_t query = out.find('?', authority);
  if (query != std::string::npos) mask_query_passwords(out, query);
  return out;
}

std::string Config::effective_postgres_dsn() const {
  if (!postgres_dsn.empty()) return postgres_dsn;
  std::string out = "postgresql://";
  out += percent_encode(postgres_user);
  if (!postgres_password.empty()) {
    out += ':';
    out += percent_encode(postgres_password);
  }
  out += '@';
  if (postgres_host.starts_with('[')) {
    out += postgres_host;  // already an IPv6 literal in URI form
  } else if (postgres_host.find(':') != std::string::npos) {
    out += "[" + postgres_host + "]";
  } else {
    // libpq decodes %XX in the host, so a socket directory ("/run/postgresql") works encoded.
    out += percent_encode(postgres_host);
  }
  out += ':';
  out += std::to_string(postgres_port);
  out += '/';
  out += percent_encode(postgres_db);
  return out;
}

}  // namespace segmentor
