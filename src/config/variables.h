// The table of configuration variables. Internal to the config module.
//
// Note [One table per variable]
// Each variable is one row: its name, how its value is shown, how to parse it into Config and how
// to print it back. parse_config(), describe_config() and known_variable_names() all walk this
// table, so a variable cannot be parsed but not printed, or printed but not documented (the docs
// test compares docs/configuration.md with known_variable_names()).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "config/config.h"

namespace segmentor::config_internal {

// How a value may appear in describe_config() output and in error messages.
enum class Display {
  kPlain,   // as is
  kSecret,  // "***" (empty stays empty: that a token is unset is not a secret)
  kUrl,     // with the password masked by mask_url_password()
};

// One row of the table: plain data with captureless parse/describe functions, so the table is a
// constant array, immutable and safe to read from any thread.
struct VariableSpec {
  std::string_view name;
  Display display;
  // Parses `value` into `config`; on failure an error whose message is the tail of
  // "NAME='value' <message>".
  Status (*parse)(std::string_view value, Config& config);
  // The value as parse() would read it back (before masking).
  std::string (*describe)(const Config& config);
};

// Every variable, grouped and ordered as the fields of Config.
std::span<const VariableSpec> variable_specs();

// `value` as it may be shown for `display`.
std::string display_value(Display display, std::string_view value);

}  // namespace segmentor::config_internal
