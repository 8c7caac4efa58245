// How main() sees a subcommand: it adds its options to the CLI, and once the command line and the
// configuration are parsed, it runs and returns the process exit code.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

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

// --device, --foreground-model, --people-model and --person-detector: the same options on every
// command that loads models, overriding DEVICE and the *_MODEL_NAME settings.
struct ModelFlags {
  std::string device;  // empty = DEVICE
  std::string foreground_model;
  std::string people_model;
  std::string person_detector;

  void add_to(CLI::App* cli) {
    cli->add_option("--device", device, "auto, cpu, cuda or cuda:N (default: DEVICE)");
    cli->add_option(
        "--foreground-model", foreground_model,
        "Model name in MODEL_CACHE or path to a .pt (default: FOREGROUND_SEG_MODEL_NAME)");
    cli->add_option("--people-model", people_model,
                    "Model name, path, or 'none' (default: PEOPLE_SEG_MODEL_NAME)");
    cli->add_option("--person-detector", person_detector,
                    "Model name, path, or 'none' (default: PEOPLE_DETECTOR_MODEL_NAME)");
  }
  // Applies the model overrides; the device goes to RuntimeOptions::device.
  void apply_models(Config& config) const {
    if (!foreground_model.empty()) config.foreground_model = foreground_model;
    if (!people_model.empty()) config.people_model = people_model;
    if (!person_detector.empty()) config.people_detector_model = person_detector;
  }
};

// One function per subcommand, each in its own <name>_command.cpp.
Subcommand add_run_command(CLI::App& app);
Subcommand add_config_command(CLI::App& app);
Subcommand add_serve_command(CLI::App& app);
Subcommand add_bench_command(CLI::App& app);
Subcommand add_plan_command(CLI::App& app);

}  // namespace segmentor
