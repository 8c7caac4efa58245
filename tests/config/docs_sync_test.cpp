// Keeps docs/configuration.md and .env.example in step with the code: the docs table, the
// describe_config() output and parse_config() must all know exactly the same variables, and the
// documented defaults must be the defaults the code uses.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"

namespace segmentor {
namespace {

const std::filesystem::path kSourceDir = SEGMENTOR_SOURCE_DIR;

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot read " << path;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string_view strip(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  return text;
}

// "`x`" -> "x"; the default cell "*(empty)*" -> ""; anything else -> nullopt.
std::optional<std::string> unquote_default(std::string_view cell) {
  if (cell == "*(empty)*") return std::string();
  if (cell.size() >= 2 && cell.front() == '`' && cell.back() == '`' &&
      cell.substr(1, cell.size() - 2).find('`') == std::string_view::npos) {
    return std::string(cell.substr(1, cell.size() - 2));
  }
  return std::nullopt;
}

struct DocRow {
  std::string name;
  std::string default_value;
};

// The rows of the one variable table. Any table row that is not the header, the separator or a
// well-formed variable row fails the test, so a malformed row cannot silently drop a variable.
std::vector<DocRow> documented_rows() {
  std::vector<DocRow> rows;
  std::istringstream in(read_text(kSourceDir / "docs/configuration.md"));
  std::string line;
  int tables = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line.front() != '|') continue;
    std::vector<std::string_view> cells;
    std::string_view rest(line);
    rest.remove_prefix(1);
    while (!rest.empty()) {
      const std::size_t bar = rest.find('|');
      cells.push_back(strip(rest.substr(0, bar)));
      if (bar == std::string_view::npos) break;
      rest.remove_prefix(bar + 1);
    }
    if (cells.size() == 4 && cells[0] == "Variable") {
      ++tables;
      continue;
    }
    if (!cells.empty() && cells[0].starts_with("---")) continue;
    if (cells.size() != 4) {
      ADD_FAILURE() << "table row without 4 cells: " << line;
      continue;
    }
    const auto name = unquote_default(cells[0]);
    const auto default_value = unquote_default(cells[1]);
    if (!name || name->empty() || !default_value || cells[2].empty() || cells[3].empty()) {
      ADD_FAILURE() << "malformed variable row: " << line;
      continue;
    }
    rows.push_back({*name, *default_value});
  }
  EXPECT_EQ(tables, 1) << "docs/configuration.md must hold exactly one variable table";
  return rows;
}

std::vector<std::string> names_of(const std::vector<DocRow>& rows) {
  std::vector<std::string> names;
  for (const auto& row : rows) names.push_back(row.name);
  return names;
}

std::vector<std::string> known_names() {
  const auto names = known_variable_names();
  return {names.begin(), names.end()};
}

std::vector<std::string> described_names() {
  std::vector<std::string> names;
  std::istringstream in(describe_config(Config{}));
  std::string line;
  while (std::getline(in, line)) names.push_back(line.substr(0, line.find('=')));
  return names;
}

TEST(DocsSync, KnownNamesAreUnique) {
  const auto names = known_names();
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
  EXPECT_GE(names.size(), 30u);
}

TEST(DocsSync, DocsTableListsExactlyTheKnownVariablesInOrder) {
  // Same order too, so the table reads grouped as config.h and describe_config() are.
  EXPECT_EQ(names_of(documented_rows()), known_names());
}

TEST(DocsSync, DescribeConfigPrintsExactlyTheKnownVariables) {
  EXPECT_EQ(described_names(), known_names());
}

TEST(DocsSync, ParseConfigReadsEveryKnownVariable) {
  // A value no variable keeps unchanged: each name either rejects it (naming itself) or stores it.
  for (const auto& name : known_names()) {
    auto config = parse_config({{name, "\x7f-not-a-default"}});
    if (config.ok()) {
      EXPECT_NE(*config, Config{}) << name << " was ignored by parse_config";
    } else {
      EXPECT_EQ(config.status().message().rfind(name + "=", 0), 0u)
          << name << ": " << config.status().message();
    }
  }
}

TEST(DocsSync, DocumentedDefaultsAreTheCodeDefaults) {
  for (const auto& row : documented_rows()) {
    auto config = parse_config({{row.name, row.default_value}});
    ASSERT_TRUE(config.ok()) << row.name << ": " << config.status().to_string();
    EXPECT_EQ(*config, Config{}) << row.name << " documented default '" << row.default_value
                                 << "' is not the code's default";
  }
}

TEST(DocsSync, EnvExampleListsEveryVariableAtItsDefault) {
  std::vector<DocRow> example;
  std::istringstream in(read_text(kSourceDir / ".env.example"));
  std::string line;
  while (std::getline(in, line)) {
    // "# NAME=value": a commented-out assignment; prose comments have no "NAME=".
    if (!line.starts_with("# ")) continue;
    const std::string body = line.substr(2);
    const std::size_t eq = body.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    const std::string name = body.substr(0, eq);
    if (name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != std::string::npos) {
      continue;
    }
    example.push_back({name, body.substr(eq + 1)});
  }
  EXPECT_EQ(names_of(example), known_names());
  const auto documented = documented_rows();
  for (std::size_t i = 0; i < std::min(example.size(), documented.size()); ++i) {
    EXPECT_EQ(example[i].default_value, documented[i].default_value) << example[i].name;
  }
}

}  // namespace
}  // namespace segmentor

namespace segmentor {
namespace {

// The README carries the configuration section word for word (STYLE.md: every option in one table
// in the README), so it cannot drift from docs/configuration.md, which the tests above check.
TEST(DocsSyncTest, ReadmeCarriesTheConfigurationSectionVerbatim) {
  const std::string readme = read_text(kSourceDir / "README.md");
  std::string section = read_text(kSourceDir / "docs/configuration.md");
  while (!section.empty() && section.back() == '\n') section.pop_back();
  EXPECT_NE(readme.find(section), std::string::npos)
      << "README.md's Configuration section differs from docs/configuration.md: copy it over";
}

}  // namespace
}  // namespace segmentor
