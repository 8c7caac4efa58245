// parse_config(), describe_config() and friends: walks the variable table (variables.h).
#include "config/config.h"

#include <set>

#include "config/variables.h"

namespace segmentor {

using config_internal::display_value;
using config_internal::variable_specs;

Result<Config> parse_config(const Environment& env) {
  Config config;
  std::vector<std::string> problems;
  std::set<std::string_view> bad;
  for (const auto& spec : variable_specs()) {
    const auto it = env.find(std::string(spec.name));
    if (it == env.end()) continue;
    const Status status = spec.parse(it->second, config);
    if (status.ok()) continue;
    bad.insert(spec.name);
    problems.push_back(std::string(spec.name) + "='" + display_value(spec.display, it->second) +
                       "' " + status.message());
  }

  // Cross-variable rules, checked only between values that parsed, so one typo gives one line.
  if (!bad.contains("MAX_CONCURRENT_IMAGES") && !bad.contains("MIN_CONCURRENT_IMAGES") &&
      config.max_concurrent_images < config.min_concurrent_images) {
    problems.push_back(
        "MAX_CONCURRENT_IMAGES=" + std::to_string(config.max_concurrent_images) +
        " is less than MIN_CONCURRENT_IMAGES=" + std::to_string(config.min_concurrent_images) +
        " (the gate's upper bound must be at least its lower bound)");
  }

  if (problems.empty()) return config;
  std::string message;
  for (const auto& problem : problems) {
    if (!message.empty()) message += '\n';
    message += problem;
  }
  return invalid_argument(std::move(message));
}

std::string describe_config(const Config& config) {
  std::string out;
  for (const auto& spec : variable_specs()) {
    out += spec.name;
    out += '=';
    out += display_value(spec.display, spec.describe(config));
    out += '\n';
  }
  return out;
}

std::span<const std::string_view> known_variable_names() {
  static const std::vector<std::string_view> kNames = [] {
    std::vector<std::string_view> names;
    for (const auto& spec : variable_specs()) names.push_back(spec.name);
    return names;
  }();
  return kNames;
}

std::vector<std::filesystem::path> Config::effective_input_roots() const {
  if (!input_roots.empty()) return input_roots;
  return {data_root};
}

}  // namespace segmentor
