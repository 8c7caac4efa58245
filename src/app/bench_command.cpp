// `segmentor bench`: the in-process load generator (bench_runner.h) from the command line, over
// one or more memory caps and gate modes, optionally with the models' ceiling; writes one JSON
// and one PNG per run and a markdown table per invocation. bench/README.md has the recipes.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "app/subcommand.h"
#include "bench/bench_plot.h"
#include "bench/bench_report.h"
#include "bench/bench_runner.h"
#include "bench/soak_runner.h"
#include "models/manifest.h"
#include "models/model_ceiling.h"
#include "models/model_loader.h"
#include "runtime/runtime.h"

namespace segmentor {

namespace {

struct BenchFlags {
  int jobs = 4;
  int frames = 1000;
  int in_flight_per_job = 4;
  double fhd_fraction = 0.5;
  std::vector<double> caps_gib;
  std::vector<std::string> gates;
  int sweep = 0;
  bool ceiling = false;
  double ceiling_seconds = 2.0;
  std::vector<int> ceiling_batches = {1, 2, 4, 8, 16};
  double inject_oom_rate = -1;
  int max_concurrent = 0;
  std::string images_dir;
  bool decode = false;
  int distinct_images = 4;
  std::string out_dir = "bench/results";
  std::string card;
  ModelFlags models;
  bool no_cpu_fallback = false;
  int sample_ms = 50;
  bool no_plot = false;
  int duration_seconds = 0;  // > 0: soak (rounds of --frames until then)
  double leak_mib_per_hour = 16;
  double warmup_fraction = 0.1;
  bool no_stages = false;
  bool write_masks = false;
};

Status write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  out.close();
  if (!out) return io_error("cannot write " + path.string());
  return Status::Ok();
}

Status write_bytes(const std::filesystem::path& path, const std::vector<std::uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return io_error("cannot write " + path.string());
  return Status::Ok();
}

// A stem not used yet in `dir` (two runs of one invocation may share a second and a gate).
std::filesystem::path free_stem(const std::filesystem::path& dir, const std::string& stem) {
  std::filesystem::path path = dir / stem;
  for (int i = 2; std::filesystem::exists(path.string() + ".json"); ++i) {
    path = dir / (stem + "_" + std::to_string(i));
  }
  return path;
}

Result<std::vector<ModelCeiling>> measure_ceiling(const Config& config, const std::string& device,
                                                  const BenchFlags& flags) {
  CeilingOptions options;
  options.device = device;
  options.use_fp16 = config.use_fp16;
  options.seconds_per_point = flags.ceiling_seconds;
  options.batch_sizes = flags.ceiling_batches;
  std::vector<ModelCeiling> models;
  std::vector<std::string> names = {config.foreground_model};
  if (config.people_model != "none") {
    names.push_back(config.people_model);
    // The person detector runs beside a person-mask model (Note [People are decided by a
    // detector]); a YOLO-seg people model has none.
    SEGMENTOR_ASSIGN_OR_RETURN(auto people_path,
                               resolve_model(config.people_model, config.model_cache));
    SEGMENTOR_ASSIGN_OR_RETURN(ModelManifest people, read_manifest(manifest_path_for(people_path)));
    if (config.people_detector_model != "none" && people.kind != ModelKind::kYoloSeg) {
      names.push_back(config.people_detector_model);
    }
  }
  for (const std::string& name : names) {
    SEGMENTOR_ASSIGN_OR_RETURN(auto path, resolve_model(name, config.model_cache));
    SEGMENTOR_ASSIGN_OR_RETURN(ModelCeiling ceiling, measure_model_ceiling(path, options));
    for (const CeilingPoint& p : ceiling.points) {
      std::printf("ceiling %-24s batch %2d: %8.1f frames/s%s%s\n", ceiling.model.c_str(), p.batch,
                  p.frames_per_second, p.out_of_memory ? " (out of memory)" : "",
                  !p.out_of_memory && !p.error.empty() ? " (failed)" : "");
    }
    models.push_back(std::move(ceiling));
  }
  return models;
}

// `--duration S`: rounds of the load until S seconds passed, then the slopes (soak_report.h).
int run_soak_command(const BenchFlags& flags, const Config& config, Runtime& rt,
                     const BenchFrames& frames, const GateSpec& gate, double cap,
                     const std::string& card) {
  SoakOptions options;
  options.round.gate = gate;
  options.round.cap_gib = cap;
  options.round.jobs = flags.jobs;
  options.round.frames_per_job = flags.frames / flags.jobs;
  options.round.in_flight_per_job = flags.in_flight_per_job;
  options.round.fhd_fraction = flags.fhd_fraction;
  options.round.sample_interval = std::chrono::milliseconds(std::max(1, flags.sample_ms));
  options.round.card = card;
  options.duration = std::chrono::seconds(flags.duration_seconds);
  options.thresholds.leak_bytes_per_hour = flags.leak_mib_per_hour * 1024 * 1024;
  options.thresholds.warmup_fraction = flags.warmup_fraction;
  options.on_round = [](const SoakSample& s) {
    std::printf(
        "soak round %d at %.0f s: %.2f frames/s, %lld done, %lld lost, RSS %.1f MiB, GPU "
        "allocated %.1f MiB, reserved %.1f MiB\n",
        s.round, s.t_seconds, s.round_fps, static_cast<long long>(s.frames_done),
        static_cast<long long>(s.frames_lost), static_cast<double>(s.rss_bytes) / 1048576.0,
        static_cast<double>(s.gpu_allocated_bytes) / 1048576.0,
        static_cast<double>(s.gpu_reserved_bytes) / 1048576.0);
    std::fflush(stdout);
  };
  auto report = run_soak(rt, config, frames, options);
  if (!report.ok()) {
    std::fprintf(stderr, "segmentor bench: %s\n", report.status().to_string().c_str());
    return kExitSomeFailed;
  }
  BenchRunReport naming;
  naming.card = card;
  naming.date = report->date;
  naming.gate = "soak";
  naming.cap_gib = cap;
  const auto stem = free_stem(flags.out_dir, result_stem(naming));
  const std::string table = soak_to_markdown(*report);
  Status written = write_text(stem.string() + ".json", soak_to_json(*report));
  if (written.ok()) written = write_text(stem.string() + ".md", table);
  if (!written.ok()) {
    std::fprintf(stderr, "segmentor bench: %s\n", written.message().c_str());
    return kExitSomeFailed;
  }
  std::printf("\n%s\n-> %s.json, %s.md\n", table.c_str(), stem.c_str(), stem.c_str());
  // A suspected leak or a lost frame fails the soak, so a script can gate on it.
  return report->leak_suspected || report->frames_lost > 0 ? kExitSomeFailed : kExitOk;
}

int run_bench_command(const BenchFlags& flags, Config config) {
  // Injected OOMs start after calibration: build_runtime sees to that.
  const double inject_rate =
      flags.inject_oom_rate >= 0 ? flags.inject_oom_rate : config.inject_oom_rate;
  config.inject_oom_rate = 0;
  if (flags.max_concurrent > 0) config.max_concurrent_images = flags.max_concurrent;
  flags.models.apply_models(config);
  if (flags.jobs < 1 || flags.frames < flags.jobs) {
    std::fprintf(stderr, "segmentor bench: need --jobs >= 1 and --frames >= --jobs\n");
    return kExitUsage;
  }

  std::vector<GateSpec> gates;
  std::vector<std::string> gate_names = flags.gates;
  if (gate_names.empty() && flags.sweep == 0) gate_names.push_back("adaptive");
  for (const std::string& name : gate_names) {
    auto spec = GateSpec::parse(name);
    if (!spec.ok()) {
      std::fprintf(stderr, "segmentor bench: %s\n", spec.status().message().c_str());
      return kExitUsage;
    }
    gates.push_back(*spec);
  }
  if (flags.sweep > 0) {
    for (int n = 1; n <= flags.sweep; ++n) gates.push_back({GateMode::kFixed, n});
    bool has_adaptive = false;
    for (const GateSpec& g : gates) has_adaptive = has_adaptive || g.mode == GateMode::kAdaptive;
    if (!has_adaptive) gates.push_back({GateMode::kAdaptive, 0});
  }
  std::vector<double> caps = flags.caps_gib;
  if (caps.empty()) caps.push_back(static_cast<double>(config.gpu_memory_limit_mb) / 1024.0);

  BenchFrames frames;
  if (flags.images_dir.empty()) {
    frames = generate_frames(flags.distinct_images);
  } else {
    auto loaded = load_frames(flags.images_dir, flags.distinct_images, flags.decode);
    if (!loaded.ok()) {
      std::fprintf(stderr, "segmentor bench: %s\n", loaded.status().message().c_str());
      return kExitUsage;
    }
    frames = std::move(*loaded);
  }

  RuntimeOptions runtime_options;
  runtime_options.device = flags.models.device;
  runtime_options.cpu_fallback = !flags.no_cpu_fallback;
  runtime_options.inject_oom_rate = inject_rate;
  runtime_options.cache_ticker = false;  // each run ticks its own cache policy
  auto runtime = build_runtime(config, runtime_options);
  if (!runtime.ok()) {
    std::fprintf(stderr, "segmentor bench: %s\n", runtime.status().to_string().c_str());
    return kExitUsage;
  }
  Runtime& rt = **runtime;
  config.inject_oom_rate = inject_rate;  // reported in every run
  // With a lane per GPU the card reads "2 x NVIDIA H100 80GB HBM3" (identical cards assumed).
  const std::size_t lanes = rt.lanes.size();
  std::string card = flags.card.empty() ? detect_card_name(rt.first().name()) : flags.card;
  if (lanes > 1 && flags.card.empty()) card = std::to_string(lanes) + " x " + card;
  std::printf("bench on %s: %s\n", card.c_str(), rt.describe().c_str());
  if (rt.uses_test_models) {
    std::printf("NOTE: test models in use: timings say nothing about production models.\n");
  }

  const std::filesystem::path out_dir = flags.out_dir;
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) {
    std::fprintf(stderr, "segmentor bench: cannot create %s: %s\n", out_dir.c_str(),
                 ec.message().c_str());
    return kExitUsage;
  }

  std::optional<double> ceiling_fps;
  if (flags.ceiling) {
    DeviceMemory& device = *rt.first().device;
    (void)device.set_process_limit(0);  // the ceiling is the card's, not the cap's
    auto ceiling = measure_ceiling(config, rt.first().name(), flags);
    if (!ceiling.ok()) {
      std::fprintf(stderr, "segmentor bench: ceiling: %s\n", ceiling.status().to_string().c_str());
      return kExitSomeFailed;
    }
    device.release_cache();
    ceiling_fps = combined_ceiling_fps(*ceiling);
    const std::string date = utc_now_iso8601();
    BenchRunReport naming;
    naming.card = card;
    naming.date = date;
    naming.gate = "ceiling";
    const auto stem = free_stem(out_dir, result_stem(naming));
    if (auto st = write_text(stem.string() + ".json",
                             ceiling_to_json(*ceiling, card, date, *ceiling_fps));
        !st.ok()) {
      std::fprintf(stderr, "segmentor bench: %s\n", st.message().c_str());
      return kExitSomeFailed;
    }
    std::printf(
        "ceiling (models alone, each at its best batch, one after the other): %.1f "
        "frames/s -> %s.json\n",
        *ceiling_fps, stem.c_str());
    if (lanes > 1) {
      // Measured on the first card; the lanes' ceiling is that many cards' worth.
      *ceiling_fps *= static_cast<double>(lanes);
      std::printf("ceiling of %zu lanes: %.1f frames/s\n", lanes, *ceiling_fps);
    }
  }

  if (flags.duration_seconds > 0) {
    return run_soak_command(flags, config, rt, frames, gates.front(), caps.front(), card);
  }

  std::vector<BenchRunReport> reports;
  for (const double cap : caps) {
    for (const GateSpec& gate : gates) {
      BenchRunOptions options;
      options.gate = gate;
      options.cap_gib = cap;
      options.jobs = flags.jobs;
      options.frames_per_job = flags.frames / flags.jobs;
      options.in_flight_per_job = flags.in_flight_per_job;
      options.fhd_fraction = flags.fhd_fraction;
      options.sample_interval = std::chrono::milliseconds(std::max(1, flags.sample_ms));
      options.card = card;
      options.stage_times = !flags.no_stages;
      options.write_masks = flags.write_masks;
      auto report = run_bench(rt, config, frames, options);
      if (!report.ok()) {
        std::fprintf(stderr, "segmentor bench: %s\n", report.status().to_string().c_str());
        return kExitSomeFailed;
      }
      if (ceiling_fps && *ceiling_fps > 0) {
        report->ceiling_fps = ceiling_fps;
        report->fraction_of_ceiling = report->throughput_fps / *ceiling_fps;
      }
      const auto stem = free_stem(out_dir, result_stem(*report));
      Status written = write_text(stem.string() + ".json", to_json(*report));
      if (written.ok() && !flags.no_plot) {
        PlotOptions plot;
        plot.cap_bytes = static_cast<std::int64_t>(report->cap_gib * 1024 * 1024 * 1024);
        auto png = plot_memory_png(report->samples, plot);
        written = png.ok() ? write_bytes(stem.string() + ".png", *png) : png.status();
      }
      if (!written.ok()) {
        std::fprintf(stderr, "segmentor bench: %s\n", written.message().c_str());
        return kExitSomeFailed;
      }
      std::printf(
          "cap %.0f GiB %-10s %5d done %4d lost (%d by OOM), %llu OOM events, %.1f "
          "frames/s, p95 %.0f ms, peak reserved %s -> %s.json\n",
          report->cap_gib, report->gate.c_str(), report->frames_done, report->frames_lost,
          report->failed_by_oom, static_cast<unsigned long long>(report->oom_events),
          report->throughput_fps, report->p95_ms, format_bytes(report->peak_reserved_bytes).c_str(),
          stem.c_str());
      std::fflush(stdout);
      reports.push_back(std::move(*report));
    }
  }
  const std::string table = to_markdown(reports);
  std::printf("\n%s", table.c_str());
  BenchRunReport naming;
  naming.card = card;
  naming.date = reports.empty() ? utc_now_iso8601() : reports.front().date;
  naming.gate = "summary";
  const auto summary = free_stem(out_dir, result_stem(naming));
  if (auto st = write_text(summary.string() + ".md", table); !st.ok()) {
    std::fprintf(stderr, "segmentor bench: %s\n", st.message().c_str());
    return kExitSomeFailed;
  }
  return kExitOk;
}

}  // namespace

Subcommand add_bench_command(CLI::App& app) {
  auto flags = std::make_shared<BenchFlags>();
  CLI::App* cli = app.add_subcommand(
      "bench",
      "Load-test the pipeline in process: J overlapping jobs of HD/FHD frames under a "
      "memory cap and a gate mode; writes JSON, a PNG plot and a markdown table");
  cli->add_option("--jobs", flags->jobs, "Overlapping jobs")->capture_default_str();
  cli->add_option("--frames", flags->frames, "Frames in all, split evenly over the jobs")
      ->capture_default_str();
  cli->add_option("--in-flight-per-job", flags->in_flight_per_job,
                  "Frames each job keeps submitted (the next goes when one finishes)")
      ->capture_default_str();
  cli->add_option("--fhd-fraction", flags->fhd_fraction, "Share of FHD frames (the rest HD)")
      ->capture_default_str();
  cli->add_option(
         "--cap-gib", flags->caps_gib,
         "Memory cap(s) in GiB, comma-separated; each is run (default GPU_MEMORY_LIMIT_MB)")
      ->delimiter(',');
  cli->add_option("--gate", flags->gates,
                  "Gate mode(s), comma-separated: adaptive, fixed:N, legacy (default adaptive)")
      ->delimiter(',');
  cli->add_option("--sweep", flags->sweep,
                  "Also run fixed:1..K (and adaptive) at every cap, to find the best fixed one");
  cli->add_flag("--ceiling", flags->ceiling,
                "First measure the models alone (inputs on the device, batch 1..16)");
  cli->add_option("--ceiling-seconds", flags->ceiling_seconds, "Timed seconds per batch size")
      ->capture_default_str();
  cli->add_option("--ceiling-batches", flags->ceiling_batches, "Batch sizes for --ceiling")
      ->delimiter(',');
  cli->add_option(
      "--inject-oom-rate", flags->inject_oom_rate,
      "Fraction of GPU model calls that fail with a real OOM (SEGMENTOR_INJECT_OOM_RATE)");
  cli->add_option("--max-concurrent", flags->max_concurrent,
                  "MAX_CONCURRENT_IMAGES for the adaptive gate");
  cli->add_option("--images", flags->images_dir,
                  "Real images to use (resized to HD and FHD) instead of generated ones");
  cli->add_flag("--decode", flags->decode,
                "With --images: use the HD/FHD files as they are and decode per task");
  cli->add_option("--distinct-images", flags->distinct_images, "Distinct images per size")
      ->capture_default_str();
  cli->add_option("-o,--out", flags->out_dir, "Where result files go")->capture_default_str();
  cli->add_option("--card", flags->card, "Card name for the results (default: from the driver)");
  flags->models.add_to(cli);
  cli->add_flag("--no-cpu-fallback", flags->no_cpu_fallback, "Do not load the CPU fallback lane");
  cli->add_option("--sample-ms", flags->sample_ms, "Memory sampling interval")
      ->capture_default_str();
  cli->add_flag("--no-plot", flags->no_plot, "Skip the PNG plots");
  cli->add_option("--duration", flags->duration_seconds,
                  "Soak: repeat rounds of --frames frames (first --gate, first --cap-gib) for this "
                  "many seconds, then report the slopes of host RSS and GPU memory (leak check)");
  cli->add_option("--leak-threshold-mib-per-hour", flags->leak_mib_per_hour,
                  "Soak: a host RSS or GPU allocated slope above this fails the soak")
      ->capture_default_str();
  cli->add_option("--warmup-fraction", flags->warmup_fraction,
                  "Soak: share of the duration left out of the slopes (warm-up)")
      ->capture_default_str();
  cli->add_flag("--no-stages", flags->no_stages,
                "Skip the per-stage times (on a GPU they synchronise each model call's stream)");
  cli->add_flag("--write-masks", flags->write_masks,
                "Encode and write the masks (to a temporary folder), so encode and write count");
  return {cli, [flags](Config& config) { return run_bench_command(*flags, config); }};
}

}  // namespace segmentor
