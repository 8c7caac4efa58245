#include "memory/concurrency_tuner.h"

#include <algorithm>
#include <memory>
#include <string>

namespace segmentor {

Result<std::unique_ptr<ConcurrencyTuner>> ConcurrencyTuner::create(ConcurrencyTunerOptions options,
                                                                   std::function<void(int)> apply) {
  options.min_concurrent = std::max(1, options.min_concurrent);
  if (options.max_concurrent < options.min_concurrent) {
    return invalid_argument("concurrency tuner: MAX_CONCURRENT_IMAGES " +
                            std::to_string(options.max_concurrent) + " is below the minimum " +
                            std::to_string(options.min_concurrent));
  }
  if (options.samples_per_level < 1 || options.window < options.samples_per_level ||
      options.decision_interval < 0 || !(options.tolerance >= 0.0 && options.tolerance < 1.0) ||
      options.explore_every < 1) {
    return invalid_argument("concurrency tuner: bad options");
  }
  return std::unique_ptr<ConcurrencyTuner>(new ConcurrencyTuner(options, std::move(apply)));
}

ConcurrencyTuner::ConcurrencyTuner(ConcurrencyTunerOptions options, std::function<void(int)> apply)
    : options_(options),
      apply_(std::move(apply)),
      levels_(static_cast<std::size_t>(options.max_concurrent) + 1),
      cap_(options.max_concurrent) {
  if (apply_) apply_(cap_);
}

void ConcurrencyTuner::on_task_done(int level, double lane_seconds) {
  if (level < 1 || !(lane_seconds > 0.0)) return;
  {
    std::lock_guard lock(mutex_);
    Level& l = levels_[static_cast<std::size_t>(std::min(level, options_.max_concurrent))];
    const auto window = static_cast<std::size_t>(options_.window);
    if (l.recent.size() < window) {
      l.recent.push_back(lane_seconds);
    } else {
      l.recent[static_cast<std::size_t>(l.samples) % window] = lane_seconds;
    }
    ++l.samples;
    const int interval = options_.decision_interval > 0 ? options_.decision_interval : 2 * cap_ + 8;
    if (++since_decision_ < interval) return;
    since_decision_ = 0;
    ++decisions_;
    const int next = decide_locked();
    if (next != cap_) {
      cap_ = next;
      // Under the lock: two decisions applied outside it could reach the gate in the opposite
      // order, leaving the gate at a cap the tuner no longer holds. (apply_ takes only the
      // gate's lock, which never calls back here.)
      if (apply_) apply_(next);
    }
  }
}

bool ConcurrencyTuner::measured_locked(int level) const {
  return levels_[static_cast<std::size_t>(level)].samples >= options_.samples_per_level;
}

double ConcurrencyTuner::lane_seconds_locked(int level) const {
  std::vector<double> recent = levels_[static_cast<std::size_t>(level)].recent;
  if (recent.empty()) return 0;
  const auto middle = recent.begin() + static_cast<std::ptrdiff_t>(recent.size() / 2);
  std::nth_element(recent.begin(), middle, recent.end());
  return *middle;
}

int ConcurrencyTuner::decide_locked() {
  // X per measured level (0 = too few reports), each median taken once.
  std::vector<double> throughput(levels_.size(), 0.0);
  double best_x = 0;
  for (int c = options_.min_concurrent; c <= options_.max_concurrent; ++c) {
    if (!measured_locked(c)) continue;
    const double x = static_cast<double>(c) / lane_seconds_locked(c);
    throughput[static_cast<std::size_t>(c)] = x;
    best_x = std::max(best_x, x);
  }
  if (best_x == 0) return cap_;  // nothing measured yet: stay
  int best = cap_;
  for (int c = options_.min_concurrent; c <= options_.max_concurrent; ++c) {
    const double x = throughput[static_cast<std::size_t>(c)];
    if (x > 0 && x >= (1.0 - options_.tolerance) * best_x) {
      best = c;
      break;
    }
  }
  const int below = best - 1;
  const int above = best + 1;
  const bool has_below = below >= options_.min_concurrent;
  const bool has_above = above <= options_.max_concurrent;
  if (has_below && !measured_locked(below)) return below;
  if (has_above && levels_[static_cast<std::size_t>(above)].samples == 0) return above;
  const auto every = static_cast<std::uint64_t>(options_.explore_every);
  if (decisions_ % every == 0) {
    const bool up = (decisions_ / every) % 2 == 1;
    if (up && has_above) return above;
    if (!up && has_below) return below;
  }
  return best;
}

int ConcurrencyTuner::cap() const {
  std::lock_guard lock(mutex_);
  return cap_;
}

std::uint64_t ConcurrencyTuner::decisions() const {
  std::lock_guard lock(mutex_);
  return decisions_;
}

std::vector<LevelEstimate> ConcurrencyTuner::estimates() const {
  std::lock_guard lock(mutex_);
  std::vector<LevelEstimate> out;
  for (int c = 1; c <= options_.max_concurrent; ++c) {
    const Level& l = levels_[static_cast<std::size_t>(c)];
    if (l.samples == 0) continue;
    const double seconds = lane_seconds_locked(c);
    out.push_back({c, l.samples, seconds, static_cast<double>(c) / seconds});
  }
  return out;
}

}  // namespace segmentor
