// `segmentor plan`: calibrate on the card in hand, then print the safe concurrency and expected
// throughput for cards of 8, 16, 24 and 32 GiB (plan_capacity.h; docs/capacity.md).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "app/subcommand.h"
#include "bench/bench_report.h"
#include "bench/bench_runner.h"
#include "bench/plan_capacity.h"
#include "models/model_loader.h"
#include "runtime/runtime.h"

namespace segmentor {

namespace {

struct PlanFlags {
  std::vector<int> cards = {8, 16, 24, 32};
  bool json = false;
  bool markdown = false;
  bool no_measure = false;
  int frames_per_point = 48;
  int max_measured_concurrency = 8;
  ModelFlags models;
};

int run_plan_command(const PlanFlags& flags, Config config) {
  flags.models.apply_models(config);
  config.inject_oom_rate = 0;
  RuntimeOptions runtime_options;
  // The plan is per card: one lane, on the first GPU when DEVICE names all of them.
  auto device = resolve_device(flags.models.device.empty() ? config.device : flags.models.device);
  if (!device.ok()) {
    std::fprintf(stderr, "segmentor plan: %s\n", device.status().to_string().c_str());
    return kExitUsage;
  }
  runtime_options.device = *device;
  runtime_options.cpu_fallback = false;  // the plan measures the card, not the fallback
  runtime_options.warm_slots = false;    // ... and runs no task
  auto runtime = build_runtime(config, runtime_options);
  if (!runtime.ok()) {
    std::fprintf(stderr, "segmentor plan: %s\n", runtime.status().to_string().c_str());
    return kExitUsage;
  }
  Runtime& rt = **runtime;

  const BenchFrames frames = generate_frames(2);
  Config probe_config = config;
  probe_config.gpu_memory_limit_mb = 0;  // compute is measured on the whole card
  ThroughputProbe probe;
  if (!flags.no_measure) {
    probe = [&](int concurrency, bool fhd) -> Result<double> {
      BenchRunOptions options;
      options.gate = GateSpec{GateMode::kFixed, concurrency};
      options.jobs = concurrency;
      options.in_flight_per_job = 2;
      options.frames_per_job = std::max(2, flags.frames_per_point / concurrency);
      options.fhd_fraction = fhd ? 1.0 : 0.0;
      SEGMENTOR_ASSIGN_OR_RETURN(BenchRunReport run, run_bench(rt, probe_config, frames, options));
      if (run.frames_lost > 0) {
        return internal_error("plan: " + std::to_string(run.frames_lost) + " of " +
                              std::to_string(run.frames) + " frames failed at concurrency " +
                              std::to_string(concurrency) +
                              (run.first_errors.empty() ? "" : ": " + run.first_errors.front()));
      }
      return run.throughput_fps;
    };
    // One untimed pass first: lazy initialisation and autotuning are not throughput.
    if (auto warm = probe(1, true); !warm.ok()) {
      std::fprintf(stderr, "segmentor plan: %s\n", warm.status().to_string().c_str());
      return kExitSomeFailed;
    }
  }

  PlanOptions options;
  options.cards_gib = flags.cards;
  options.threshold = config.gpu_memory_threshold;
  options.max_measured_concurrency = flags.max_measured_concurrency;
  auto plan = plan_capacity(rt.first().calibration, options, probe);
  if (!plan.ok()) {
    std::fprintf(stderr, "segmentor plan: %s\n", plan.status().to_string().c_str());
    return kExitSomeFailed;
  }
  const ModelSet& lane = *rt.first().lane;
  plan->device = lane.name;
  plan->card = detect_card_name(lane.name);
  plan->date = utc_now_iso8601();
  plan->models.push_back(lane.foreground->info().name);
  if (lane.people) plan->models.push_back(lane.people->info().name);
  if (lane.person_detector) plan->models.push_back(lane.person_detector->info().name);
  const std::string text = flags.json       ? plan_to_json(*plan)
                           : flags.markdown ? plan_to_markdown(*plan)
                                            : plan_to_text(*plan);
  std::fputs(text.c_str(), stdout);
  return kExitOk;
}

}  // namespace

Subcommand add_plan_command(CLI::App& app) {
  auto flags = std::make_shared<PlanFlags>();
  CLI::App* cli = app.add_subcommand(
      "plan",
      "Calibrate on this card, then print the safe concurrency and expected throughput "
      "for 8, 16, 24 and 32 GiB cards");
  cli->add_option("--cards", flags->cards, "Card sizes in GiB, comma-separated")->delimiter(',');
  cli->add_flag("--json", flags->json, "Print JSON");
  cli->add_flag("--markdown", flags->markdown, "Print the markdown table docs/capacity.md carries");
  cli->add_flag("--no-measure", flags->no_measure, "Skip the throughput runs (memory only)");
  cli->add_option("--frames-per-point", flags->frames_per_point,
                  "Frames per measured concurrency and size")
      ->capture_default_str();
  cli->add_option("--max-measured-concurrency", flags->max_measured_concurrency,
                  "Throughput is measured at no more than this concurrency")
      ->capture_default_str();
  flags->models.add_to(cli);
  return {cli, [flags](Config& config) { return run_plan_command(*flags, config); }};
}

}  // namespace segmentor
