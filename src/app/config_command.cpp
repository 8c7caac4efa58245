#include <cstdio>

#include "app/subcommand.h"

namespace segmentor {

Subcommand add_config_command(CLI::App& app) {
  CLI::App* cli = app.add_subcommand(
      "config", "Print the effective configuration (environment, then .env), secrets masked");
  return {cli, [](Config& config) {
            std::fputs(describe_config(config).c_str(), stdout);
            return kExitOk;
          }};
}

}  // namespace segmentor
