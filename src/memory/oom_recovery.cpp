#include "memory/oom_recovery.h"

#include <algorithm>
#include <thread>

namespace segmentor {

RecoveryStats& RecoveryStats::operator+=(const RecoveryStats& other) {
  oom_events += other.oom_events;
  cache_releases += other.cache_releases;
  retries += other.retries;
  cpu_fallbacks += other.cpu_fallbacks;
  cpu_fallback_failures += other.cpu_fallback_failures;
  failed_tasks += other.failed_tasks;
  non_oom_errors += other.non_oom_errors;
  recovered_on_gpu += other.recovered_on_gpu;
  recovered_on_cpu += other.recovered_on_cpu;
  over_admission_ooms += other.over_admission_ooms;
  below_budget_ooms += other.below_budget_ooms;
  immediate_retries += other.immediate_retries;
  backoff_time_total += other.backoff_time_total;
  cache_release_time_total += other.cache_release_time_total;
  return *this;
}

namespace {

std::string format_duration(std::chrono::nanoseconds d) {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  using std::chrono::milliseconds;
  if (d >= milliseconds(10)) return std::to_string(duration_cast<milliseconds>(d).count()) + " ms";
  return std::to_string(duration_cast<microseconds>(d).count()) + " us";
}

// "2 GPU attempts: <trail>", the end of a ladder's error message.
std::string attempts_and_trail(const RecoveryReport& r) {
  return std::to_string(r.gpu_attempts) + " GPU attempt" + (r.gpu_attempts == 1 ? "" : "s") + ": " +
         r.trail;
}

}  // namespace

Result<std::unique_ptr<OomRecovery>> OomRecovery::create(RecoveryOptions options,
                                                         DeviceMemory* device, AdmissionGate* gate,
                                                         CachePolicy* cache) {
  if (device == nullptr) return invalid_argument("oom recovery: no device");
  if (options.max_oom_retries < 0) {
    return invalid_argument("oom recovery: MAX_OOM_RETRIES must be >= 0, got " +
                            std::to_string(options.max_oom_retries));
  }
  if (!(options.memory_threshold > 0.0 && options.memory_threshold <= 1.0)) {
    return invalid_argument("oom recovery: memory threshold must be in (0, 1]");
  }
  for (const auto step : options.backoff) {
    if (step.count() < 0) return invalid_argument("oom recovery: negative back-off step");
  }
  return std::unique_ptr<OomRecovery>(new OomRecovery(std::move(options), device, gate, cache));
}

OomRecovery::OomRecovery(RecoveryOptions options, DeviceMemory* device, AdmissionGate* gate,
                         CachePolicy* cache)
    : options_(std::move(options)), device_(device), gate_(gate), cache_(cache) {}

std::chrono::nanoseconds OomRecovery::backoff_for(int retry, OomCause cause) const {
  if (options_.backoff.empty()) return std::chrono::nanoseconds(0);
  const auto index =
      std::min<std::size_t>(static_cast<std::size_t>(retry), options_.backoff.size() - 1);
  const std::chrono::nanoseconds step = options_.backoff[index];
  if (cause == OomCause::kOverAdmission) return step;
  return std::chrono::duration_cast<std::chrono::nanoseconds>(step * kPassingBackoffShare);
}

OomJudgement OomRecovery::judge(const MemorySnapshot& at_oom) const {
  if (gate_ == nullptr) return judge_out_of_memory(at_oom, 0, options_.memory_threshold);
  return judge_out_of_memory(at_oom, gate_->stats().largest_task_bytes, gate_->memory_threshold());
}

// The ladder of Note [Recovery ladder]; each rung's counter is bumped where the rung happens.
Status OomRecovery::run(const Attempt& gpu, const Attempt& cpu_fallback, RecoveryReport* report,
                        const LadderHooks& hooks) {
  RecoveryReport local;
  RecoveryReport& r = report != nullptr ? *report : local;
  r = RecoveryReport{};
  auto note = [&r](const std::string& text) {
    if (!r.trail.empty()) r.trail += "; ";
    r.trail += text;
  };

  const int max_retries = options_.retry_on_oom ? options_.max_oom_retries : 0;
  int backoffs = 0;              // back-offs taken: they index the back-off steps
  bool retried_at_once = false;  // rung 2a is used once per task
  for (int retry = 0;; ++retry) {
    ++r.gpu_attempts;
    const Status status = gpu();  // rung 1
    if (status.ok()) {
      if (gate_ != nullptr) gate_->on_success();
      std::lock_guard lock(stats_mutex_);
      if (retry > 0) ++stats_.recovered_on_gpu;
      r.succeeded = true;
      return status;
    }
    if (status.code() != ErrorCode::kOutOfMemory) {
      std::lock_guard lock(stats_mutex_);
      ++stats_.non_oom_errors;
      return status;
    }

    // Rung 2: read the device before anything is released, and judge the OOM.
    ++r.oom_events;
    note("gpu attempt " + std::to_string(r.gpu_attempts) + ": " + status.message());
    const OomJudgement judgement = judge(device_->snapshot());
    const bool over_admission = judgement.cause == OomCause::kOverAdmission;
    if (over_admission) ++r.over_admission_ooms;
    note(std::string(to_string(judgement.cause)) + " (" + judgement.describe() + ")");
    const bool at_once = !over_admission && !retried_at_once && retry < max_retries;
    {
      std::lock_guard lock(stats_mutex_);
      ++stats_.oom_events;
      ++(over_admission ? stats_.over_admission_ooms : stats_.below_budget_ooms);
      if (at_once) {
        ++stats_.immediate_retries;
        ++stats_.retries;
      }
    }
    if (at_once) {  // rung 2a
      retried_at_once = true;
      note("retried at once");
      continue;
    }

    // Rung 3: give the cached blocks back so the retry (or a neighbour) can have them. Only after
    // over-admission: a passing OOM left room free, so a release gains nothing and costs every
    // slot's blocks, re-allocated with device-wide synchronisation (Note [Over-admission or a
    // passing OOM]).
    if (over_admission) {
      const std::chrono::nanoseconds took =
          cache_ != nullptr ? cache_->on_out_of_memory() : device_->release_cache();
      {
        std::lock_guard lock(stats_mutex_);
        ++stats_.cache_releases;
        stats_.cache_release_time_total += took;
      }
      note("released cache in " + format_duration(took));
    }

    if (gate_ != nullptr && over_admission) {  // rung 4
      gate_->on_out_of_memory();
      note("shrank the gate");
    }

    if (retry >= max_retries) {
      note(options_.retry_on_oom
               ? "retries exhausted (MAX_OOM_RETRIES=" + std::to_string(max_retries) + ")"
               : std::string("not retried (RETRY_ON_OOM=false)"));
      break;
    }
    const std::chrono::nanoseconds wait = backoff_for(backoffs++, judgement.cause);  // rung 5
    if (hooks.before_backoff) hooks.before_backoff();
    if (options_.sleep) {
      options_.sleep(wait);
    } else {
      std::this_thread::sleep_for(wait);
    }
    {
      std::lock_guard lock(stats_mutex_);
      ++stats_.retries;
      stats_.backoff_time_total += wait;
    }
    note("backed off " + format_duration(wait));
    if (hooks.after_backoff) {
      Status resumed = hooks.after_backoff();
      if (!resumed.ok()) {
        note("could not resume: " + resumed.to_string());
        std::lock_guard lock(stats_mutex_);
        ++stats_.failed_tasks;
        return Status(resumed.code(), "stopped after " + attempts_and_trail(r));
      }
    }
  }

  ErrorCode code = ErrorCode::kOutOfMemory;
  if (cpu_fallback) {  // rung 6
    r.used_cpu_fallback = true;
    {
      std::lock_guard lock(stats_mutex_);
      ++stats_.cpu_fallbacks;
    }
    const Status status = cpu_fallback();
    if (status.ok()) {
      std::lock_guard lock(stats_mutex_);
      ++stats_.recovered_on_cpu;
      r.succeeded = true;
      return status;
    }
    {
      std::lock_guard lock(stats_mutex_);
      ++stats_.cpu_fallback_failures;
    }
    note("cpu fallback failed: " + status.to_string());
    code = status.code();
  } else {
    note("no cpu fallback");
  }

  {  // rung 7
    std::lock_guard lock(stats_mutex_);
    ++stats_.failed_tasks;
  }
  return Status(code, "gave up after " + attempts_and_trail(r));
}

RecoveryStats OomRecovery::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

}  // namespace segmentor
