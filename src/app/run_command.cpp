#include "app/run_command.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "app/progress.h"
#include "app/subcommand.h"
#include "common/elapsed.h"
#include "imaging/input_files.h"
#include "pipeline/engine.h"
#include "runtime/runtime.h"

namespace segmentor {

namespace {

// Note [Freezing pays only for many images on the CPU] (in run_images).
constexpr std::size_t kFreezeCpuModelsFromImages = 28;

using SteadyClock = std::chrono::steady_clock;

// What the summary needs, gathered from worker threads under one mutex.
struct Tally {
  std::mutex mutex;
  std::size_t done = 0;
  std::size_t with_people = 0;  // images whose people mask is not empty
  std::vector<std::pair<std::string, std::string>> failed;
  std::map<std::string, std::size_t> by_lane;
  double decode = 0, wait = 0, segment = 0, write = 0;
  // Seconds from the command's start: models loaded, calibrated and warmed; the first mask
  // written (issue 13's "start to first mask"; negative until it happens).
  double startup_seconds = 0;
  double first_mask_seconds = -1;
};

void print_summary(const Tally& tally, double elapsed, const Runtime& runtime,
                   const RunOptions& options) {
  const std::size_t total = tally.done + tally.failed.size();
  std::printf("done %zu, failed %zu, of %zu image%s in %.2f s", tally.done, tally.failed.size(),
              total, total == 1 ? "" : "s", elapsed);
  if (tally.done > 0) {
    const auto n = static_cast<double>(tally.done);
    std::printf(
        " (%.3f s/image wall; per image: decode %.3f, gate wait %.3f, segment %.3f, "
        "write %.3f)",
        elapsed / n, tally.decode / n, tally.wait / n, tally.segment / n, tally.write / n);
  }
  std::printf("\n");
  if (tally.first_mask_seconds >= 0) {
    std::printf("start-up %.2f s; first mask after %.2f s\n", tally.startup_seconds,
                tally.first_mask_seconds);
  }
  if (tally.done > 0) {
    std::printf(
        "people found in %zu of %zu image%s (their pixels are left out of the product "
        "mask)\n",
        tally.with_people, tally.done, tally.done == 1 ? "" : "s");
  }
  std::printf("device: %s\n", runtime.describe().c_str());
  for (const auto& [lane, count] : tally.by_lane) {
    std::printf("  %zu image%s on %s\n", count, count == 1 ? "" : "s", lane.c_str());
  }
  const RecoveryStats recovery = runtime.recovery_stats();
  if (recovery.oom_events > 0) {
    std::printf("out-of-memory events %llu: retried %llu, CPU fallbacks %llu, failed %llu\n",
                static_cast<unsigned long long>(recovery.oom_events),
                static_cast<unsigned long long>(recovery.retries),
                static_cast<unsigned long long>(recovery.cpu_fallbacks),
                static_cast<unsigned long long>(recovery.failed_tasks));
  }
  if (runtime.uses_test_models) {
    std::printf(
        "NOTE: test models in use (toy networks from tools/make_test_models.py): the masks show "
        "that the pipeline works, not real segmentation quality.\n");
  }
  std::printf("masks: %s\n", std::filesystem::absolute(options.out_dir).string().c_str());
  if (!tally.failed.empty()) {
    std::printf("failed:\n");
    for (const auto& [name, reason] : tally.failed) {
      std::printf("  %s: %s\n", name.c_str(), reason.c_str());
    }
  }
}

}  // namespace

int run_images(const RunOptions& options, const Config& config) {
  const auto command_start = SteadyClock::now();
  auto inputs = collect_input_files(options.inputs);
  if (!inputs.ok()) {
    std::fprintf(stderr, "segmentor run: %s\n", inputs.status().message().c_str());
    return 2;
  }
  if (inputs->empty()) {
    std::fprintf(stderr, "segmentor run: no images (.jpg .jpeg .png .webp) found in the inputs\n");
    return 2;
  }
  RuntimeOptions runtime_options;
  runtime_options.device = options.device;
  // Note [Freezing pays only for many images on the CPU]
  // ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
  // Freezing (Note [Freezing TorchScript modules]) checks itself with forward passes at load,
  // and the frozen and optimised graphs each pay their own first runs. On the 2-core dev VM with
  // Debian's LibTorch 1.13, IS-Net medium on one image took 32.9 s of CPU frozen and 4.9 s not,
  // while a frozen pass saved ~1 s per further image (bench/RESULTS.md, 2026-11-30): freezing
  // pays after ~28 images. So a `run` over fewer images than that loads the CPU models as they
  // are; `serve`, `bench` and long runs still freeze. GPU lanes are not affected.
  runtime_options.freeze_cpu_models = inputs->size() >= kFreezeCpuModelsFromImages;
  // A batch job is judged by its total time, not by the latency of its first frames: warming
  // every slot first (Note [Warm every slot before ready]) took 2.6 s with 4 slots and 7.9 s
  // with 16 on the H200 (bench/RESULTS.md, 2026-11-30), more than the cold first calls it saves
  // here. serve and bench warm; run does not.
  runtime_options.warm_slots = false;
  auto runtime = build_runtime(config, runtime_options);
  if (!runtime.ok()) {
    std::fprintf(stderr, "segmentor run: %s\n", runtime.status().to_string().c_str());
    return 2;
  }
  Runtime& rt = **runtime;

  EngineOptions engine_options;
  engine_options.layout = MaskLayout{options.out_dir, config.foreground_mask_rel_path,
                                     config.people_mask_rel_path, config.product_mask_rel_path};
  engine_options.decode = DecodeOptions{config.max_image_pixels, {}};
  engine_options.max_concurrent = config.max_concurrent_images;
  if (options.cutout) engine_options.cutout_dir = options.out_dir / "cutouts";

  const bool interactive = options.progress_bar && isatty(STDERR_FILENO) == 1;
  ProgressReporter progress(stderr, interactive, inputs->size());
  Tally tally;
  const auto start = SteadyClock::now();
  tally.startup_seconds = std::chrono::duration<double>(start - command_start).count();
  {
    Engine engine(engine_options, rt.lane_views(), rt.cpu_lane.get());
    for (const auto& input : *inputs) {
      EngineTask task{options.kind, input.id, input.path, std::nullopt, {}};
      engine.submit(std::move(task), [&](const EngineTask& t, const TaskOutcome& outcome) {
        std::lock_guard lock(tally.mutex);
        const std::string name = t.source.string();
        if (outcome.status.ok()) {
          if (tally.done == 0) {
            tally.first_mask_seconds = seconds_since(command_start);
          }
          ++tally.done;
          ++tally.by_lane[outcome.lane];
          if (outcome.people_found) ++tally.with_people;
          tally.decode += outcome.decode_seconds;
          tally.wait += outcome.wait_seconds;
          tally.segment += outcome.segment_seconds;
          tally.write += outcome.write_seconds;
          progress.item_done(name, true, "");
        } else {
          tally.failed.emplace_back(name, outcome.status.to_string());
          progress.item_done(name, false, outcome.status.to_string());
        }
      });
    }
    engine.wait_idle();
  }
  progress.finish();
  std::sort(tally.failed.begin(), tally.failed.end());
  print_summary(tally, seconds_since(start), rt, options);
  return tally.failed.empty() ? 0 : 1;
}

Subcommand add_run_command(CLI::App& app) {
  struct Flags {
    RunOptions run;
    std::string kind = "product";
    bool no_progress = false;
    ModelFlags models;
  };
  auto flags = std::make_shared<Flags>();
  CLI::App* cli = app.add_subcommand(
      "run", "Segment image files and folders (recursively) and write the three masks per image");
  cli->add_option("paths", flags->run.inputs, "Image files or folders (.jpg .jpeg .png .webp)")
      ->required();
  cli->add_option("-o,--out", flags->run.out_dir,
                  "Output folder: masks go to OUT/masks_{foreground,people,product}/"
                  "{product_images|video_frames}/<name>.png")
      ->capture_default_str();
  cli->add_flag("--cutout", flags->run.cutout,
                "Also write OUT/cutouts/<name>.png: the image with alpha = product mask");
  cli->add_option("--kind", flags->kind,
                  "product (masks under product_images) or frame (video_frames)")
      ->check(CLI::IsMember({"product", "frame"}))
      ->capture_default_str();
  flags->models.add_to(cli);
  cli->add_flag("--no-progress", flags->no_progress, "Plain log lines even on a terminal");
  return {cli, [flags](Config& config) {
            RunOptions run = flags->run;
            run.kind = flags->kind == "frame" ? AssetKind::kVideoFrame : AssetKind::kProductImage;
            run.progress_bar = !flags->no_progress;
            run.device = flags->models.device;
            flags->models.apply_models(config);
            return run_images(run, config);
          }};
}

}  // namespace segmentor
