// segmentor: foreground, people and product masks for product images and video keyframes.
// Each subcommand lives in its own file; this only parses, loads the configuration and dispatches.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "app/subcommand.h"
#include "config/config.h"
#include "observability/logging.h"

extern char** environ;

int main(int argc, char** argv) {
  CLI::App app{
      "segmentor: foreground, people and product masks (product = foreground minus people) for "
      "product images and video keyframes, with GPU-memory-aware scheduling.\n"
      "Settings come from the environment, then from a .env file (see `segmentor config`)."};
  app.require_subcommand(1);
  std::string env_file = ".env";
  app.add_option("--env-file", env_file, "A .env file read for names the environment lacks")
      ->capture_default_str();

  const std::vector<segmentor::Subcommand> commands = {
      segmentor::add_run_command(app),   segmentor::add_config_command(app),
      segmentor::add_serve_command(app), segmentor::add_bench_command(app),
      segmentor::add_plan_command(app),
  };

  CLI11_PARSE(app, argc, argv);

  auto env = segmentor::read_environment(environ, env_file);
  if (!env.ok()) {
    std::fprintf(stderr, "segmentor: %s\n", env.status().message().c_str());
    return segmentor::kExitUsage;
  }
  auto config = segmentor::parse_config(*env);
  if (!config.ok()) {
    std::fprintf(stderr, "segmentor: invalid configuration:\n%s\n",
                 config.status().message().c_str());
    return segmentor::kExitUsage;
  }
  // People at a terminal read text; everything else gets what LOG_FORMAT says.
  const bool text_logs = config->log_format == "text" || isatty(STDERR_FILENO) == 1;
  if (auto st = segmentor::setup_logging(
          config->log_level, text_logs ? segmentor::LogFormat::kText : segmentor::LogFormat::kJson);
      !st.ok()) {
    std::fprintf(stderr, "segmentor: %s\n", st.message().c_str());
    return segmentor::kExitUsage;
  }
  for (const auto& command : commands) {
    if (command.cli->parsed()) return command.run(*config);
  }
  return segmentor::kExitUsage;
}
