// How main() sees a subcommand: it adds its options to the CLI, and once the command line and the
// configuration are parsed, it runs and returns the process exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "config/config.h"

namespace segmentor {

inline constexpr int kExitOk = 0;
inline constexpr int kExitSomeFailed = 1;
inline constexpr int kExitUsage = 2;  // bad arguments, bad configuration, nothing could start

struct Subcommand {
  CLI::App* cli = nullptr;
  // Receives the parsed configuration; may adjust it with its own flags before using it.
  std::function<int(Config&)> run;
};

// One function per subcommand, each in its own <name>_command.cpp.
Subcommand add_run_command(CLI::App& app);
Subcommand add_config_command(CLI::App& app);
Subcommand add_serve_command(CLI::App& app);
Subcommand add_bench_command(CLI::App& app);
Subcommand add_plan_command(CLI::App& app);

}  // namespace segmentor
