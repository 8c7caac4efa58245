#include "bench/soak_runner.h"

#include <malloc.h>

#include <fstream>
#include <sstream>
#include <string>

namespace segmentor {

std::int64_t process_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    std::int64_t kib = 0;
    fields >> kib;
    return kib * 1024;
  }
  return 0;
}

Result<SoakReport> run_soak(Runtime& runtime, const Config& config, const BenchFrames& frames,
                            const SoakOptions& options) {
  if (options.duration.count() <= 0) return invalid_argument("soak: the duration must be > 0 s");
  using SteadyClock = std::chrono::steady_clock;
  SoakReport report;
  report.date = utc_now_iso8601();
  report.duration_seconds = static_cast<double>(options.duration.count());
  report.thresholds = options.thresholds;
  report.frames_per_round = options.round.jobs * options.round.frames_per_job;
  report.card = options.round.card;
  report.gate = options.round.gate.name();

  const auto start = SteadyClock::now();
  const auto deadline = start + options.duration;
  std::int64_t done = 0, lost = 0;
  for (int round = 1; round <= options.min_rounds || SteadyClock::now() < deadline; ++round) {
    SEGMENTOR_ASSIGN_OR_RETURN(BenchRunReport run,
                               run_bench(runtime, config, frames, options.round));
    if (round == 1) {
      report.device = run.device;
      report.models = run.models;
      report.test_models = run.test_models;
    }
    done += run.frames_done;
    lost += run.frames_lost;
    SoakSample sample;
    sample.round = round;
    sample.t_seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
    sample.frames_done = done;
    sample.frames_lost = lost;
    sample.round_fps = run.throughput_fps;
    sample.round_p95_ms = run.p95_ms;
    // glibc keeps freed memory in its arenas and gives it back when it likes; trimming first makes
    // RSS follow what is live, so the reading between rounds is not noise from the last one.
    malloc_trim(0);
    sample.rss_bytes = process_rss_bytes();
    // The allocator of every GPU lane; the CPU lane's host view has none (zeros).
    for (const auto& lane : runtime.lanes) {
      const MemorySnapshot snap = lane->device->snapshot();
      sample.gpu_allocated_bytes += snap.allocated_bytes;
      sample.gpu_reserved_bytes += snap.reserved_bytes;
    }
    report.samples.push_back(sample);
    if (options.on_round) options.on_round(sample);
  }
  report.wall_seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  analyse_soak(report);
  return report;
}

}  // namespace segmentor
