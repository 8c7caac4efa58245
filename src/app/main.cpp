// segmentor: product/people/foreground masks for images and video keyframes.
// Subcommands: run (a folder of images), config (print the effective configuration).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "app/logging.h"
#include "app/run_command.h"
#include "config/config.h"

extern char** environ;

namespace {

constexpr int kExitUsage = 2;

}  // namespace

int main(int argc, char** argv) {
  using segmentor::Config;

  CLI::App app{
      "segmentor: foreground, people and product masks (product = foreground minus people) for "
      "product images and video keyframes, with GPU-memory-aware scheduling.\n"
      "Settings come from the environment, then from a .env file (see `segmentor config`)."};
  app.require_subcommand(1);
  std::string env_file = ".env";
  app.add_option("--env-file", env_file, "A .env file read for names the environment lacks")
      ->capture_default_str();

  // --- run ---
  segmentor::RunOptions run;
  std::string kind = "product";
  bool no_progress = false;
  std::string foreground_model;
  std::string people_model;
  auto* run_cmd = app.add_subcommand(
      "run", "Segment image files and folders (recursively) and write the three masks per image");
  run_cmd->add_option("paths", run.inputs, "Image files or folders (.jpg .jpeg .png .webp)")
      ->required();
  run_cmd
      ->add_option("-o,--out", run.out_dir,
                   "Output folder: masks go to OUT/masks_{foreground,people,product}/"
                   "{product_images|video_frames}/<name>.png")
      ->capture_default_str();
  run_cmd->add_flag("--cutout", run.cutout,
                    "Also write OUT/cutouts/<name>.png: the image with alpha = product mask");
  run_cmd
      ->add_option("--kind", kind, "product (masks under product_images) or frame (video_frames)")
      ->check(CLI::IsMember({"product", "frame"}))
      ->capture_default_str();
  run_cmd->add_option("--device", run.device, "auto, cpu, cuda or cuda:N (default: DEVICE)");
  run_cmd->add_option("--foreground-model", foreground_model,
                      "Model name in MODEL_CACHE or path to a .pt (default: "
                      "FOREGROUND_SEG_MODEL_NAME)");
  run_cmd->add_option("--people-model", people_model,
                      "Model name, path, or 'none' (default: PEOPLE_SEG_MODEL_NAME)");
  run_cmd->add_flag("--no-progress", no_progress, "Plain log lines even on a terminal");

  // --- config ---
  auto* config_cmd = app.add_subcommand(
      "config", "Print the effective configuration (environment, then .env), secrets masked");

  CLI11_PARSE(app, argc, argv);

  auto env = segmentor::read_environment(environ, env_file);
  if (!env.ok()) {
    std::fprintf(stderr, "segmentor: %s\n", env.status().message().c_str());
    return kExitUsage;
  }
  auto config = segmentor::parse_config(*env);
  if (!config.ok()) {
    std::fprintf(stderr, "segmentor: invalid configuration:\n%s\n",
                 config.status().message().c_str());
    return kExitUsage;
  }

  if (config_cmd->parsed()) {
    std::fputs(segmentor::describe_config(*config).c_str(), stdout);
    return 0;
  }

  // People at a terminal read text; everything else gets what LOG_FORMAT says.
  const bool text_logs = config->log_format == "text" || isatty(STDERR_FILENO) == 1;
  if (auto st = segmentor::setup_logging(
          config->log_level, text_logs ? segmentor::LogFormat::kText : segmentor::LogFormat::kJson);
      !st.ok()) {
    std::fprintf(stderr, "segmentor: %s\n", st.message().c_str());
    return kExitUsage;
  }

  if (run_cmd->parsed()) {
    run.kind =
        kind == "frame" ? segmentor::AssetKind::kVideoFrame : segmentor::AssetKind::kProductImage;
    run.progress_bar = !no_progress;
    if (!foreground_model.empty()) config->foreground_model = foreground_model;
    if (!people_model.empty()) config->people_model = people_model;
    return segmentor::run_images(run, *config);
  }
  return kExitUsage;
}
