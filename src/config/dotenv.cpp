// read_environment() and the .env parser.
//
// Note [.env syntax]
// One assignment per line: `[export ]KEY=VALUE`. KEY is [A-Za-z_][A-Za-z0-9_]*; blanks around
// `=` are ignored. VALUE is one of
//   - unquoted: taken verbatim up to an inline comment (a '#' preceded by a blank), then trimmed,
//     so `PASSWORD=a#b` keeps its '#';
//   - 'single quoted': literal, no escapes;
//   - "double quoted": \n, \", \\ (and \t, \r) are escapes; any other backslash stays as written.
// After a closing quote only blanks and a `# comment` may follow. Blank lines and lines starting
// with '#' are skipped; CRLF line ends are accepted. There is no ${VAR} interpolation and no
// multi-line value: an unterminated quote is an error, not a reason to read the next line.
// Errors say "<file>:<line>: <problem>" and never repeat the value, which may be a password.
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "config/config.h"
#include "config/value_parsers.h"

namespace segmentor {
namespace {

using config_internal::trim;

bool is_blank(char c) { return c == ' ' || c == '\t'; }

bool is_key_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }

bool is_key_char(char c) { return is_key_start(c) || (c >= '0' && c <= '9'); }

// Checks what follows a closing quote: nothing, blanks, or a blank-led or bare `# comment`.
Status check_after_quote(std::string_view rest) {
  rest = trim(rest);
  if (rest.empty() || rest.front() == '#') return Status::Ok();
  return invalid_argument("unexpected text after the closing quote");
}

// What a backslash escape inside double quotes stands for; '\0' for an unknown escape.
char unescape(char c) {
  switch (c) {
    case 'n':
      return '\n';
    case 't':
      return '\t';
    case 'r':
      return '\r';
    case '"':
      return '"';
    case '\\':
      return '\\';
    default:
      return '\0';
  }
}

Result<std::string> parse_double_quoted(std::string_view text) {
  // `text` starts just after the opening quote.
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      SEGMENTOR_RETURN_IF_ERROR(check_after_quote(text.substr(i + 1)));
      return out;
    }
    if (c == '\\' && i + 1 < text.size()) {
      if (const char unescaped = unescape(text[i + 1]); unescaped != '\0') {
        out += unescaped;
        ++i;
        continue;
      }
      // An unknown escape is kept as written: "C:\path" stays "C:\path".
    }
    out += c;
  }
  return invalid_argument("unterminated double-quoted value");
}

Result<std::string> parse_single_quoted(std::string_view text) {
  const std::size_t close = text.find('\'');
  if (close == std::string_view::npos) return invalid_argument("unterminated single-quoted value");
  SEGMENTOR_RETURN_IF_ERROR(check_after_quote(text.substr(close + 1)));
  return std::string(text.substr(0, close));
}

std::string parse_unquoted(std::string_view text) {
  for (std::size_t i = 1; i < text.size(); ++i) {
    if (text[i] == '#' && is_blank(text[i - 1])) {
      text = text.substr(0, i);
      break;
    }
  }
  return std::string(trim(text));
}

// One non-blank, non-comment line -> (key, value).
Result<std::pair<std::string, std::string>> parse_assignment(std::string_view line) {
  constexpr std::string_view kExport = "export";
  if (line.starts_with(kExport) && line.size() > kExport.size() && is_blank(line[kExport.size()])) {
    line = trim(line.substr(kExport.size()));
  }
  std::size_t key_end = 0;
  if (line.empty() || !is_key_start(line.front())) {
    return invalid_argument("expected KEY=VALUE (a name of letters, digits and '_')");
  }
  while (key_end < line.size() && is_key_char(line[key_end])) ++key_end;
  std::string key(line.substr(0, key_end));
  std::string_view rest = trim(line.substr(key_end));
  if (rest.empty() || rest.front() != '=') {
    return invalid_argument("expected '=' after " + key + " (lines are KEY=VALUE)");
  }
  // Untrimmed for unquoted values: in `KEY= # note` the '#' follows a blank, so it is a comment.
  const std::string_view raw = rest.substr(1);
  const std::string_view text = trim(raw);
  Result<std::string> value = std::string();
  if (!text.empty() && text.front() == '"') {
    value = parse_double_quoted(text.substr(1));
  } else if (!text.empty() && text.front() == '\'') {
    value = parse_single_quoted(text.substr(1));
  } else {
    value = parse_unquoted(raw);
  }
  if (!value.ok()) return invalid_argument(key + ": " + value.status().message());
  return std::pair{std::move(key), std::move(value).value()};
}

}  // namespace

Result<Environment> parse_dotenv(std::string_view text, std::string_view source_name) {
  Environment env;
  int line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const std::size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text = newline == std::string_view::npos ? std::string_view() : text.substr(newline + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    auto assignment = parse_assignment(line);
    if (!assignment.ok()) {
      return invalid_argument(std::string(source_name) + ":" + std::to_string(line_number) + ": " +
                              assignment.status().message());
    }
    env[assignment->first] = std::move(assignment->second);
  }
  return env;
}

Result<Environment> read_environment(char** environ_block,
                                     const std::filesystem::path& dotenv_path) {
  Environment env;
  for (char** entry = environ_block; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const std::size_t eq = text.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    // emplace keeps the first of duplicate names, as getenv() does.
    env.emplace(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
  }

  std::error_code ec;
  const auto status = std::filesystem::status(dotenv_path, ec);
  if (status.type() == std::filesystem::file_type::not_found) return env;
  if (ec) return io_error(dotenv_path.string() + ": " + ec.message());
  if (std::filesystem::is_directory(status)) {
    return io_error(dotenv_path.string() + ": is a directory, expected a .env file");
  }
  std::ifstream file(dotenv_path, std::ios::binary);
  if (!file) return io_error(dotenv_path.string() + ": cannot open: " + std::strerror(errno));
  std::ostringstream contents;
  contents << file.rdbuf();
  if (file.bad()) return io_error(dotenv_path.string() + ": read failed");

  SEGMENTOR_ASSIGN_OR_RETURN(Environment from_file,
                             parse_dotenv(contents.str(), dotenv_path.string()));
  for (auto& [name, value] : from_file) {
    env.emplace(name, std::move(value));  // The environment always wins.
  }
  return env;
}

}  // namespace segmentor
