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
  if (options.samples_per_level < 1 || options.decision_interval < 0 ||
      !(options.ewma_weight > 0.0 && options.ewma_weight <= 1.0) ||
      !(options.tolerance >= 0.0 && options.tolerance < 1.0) || options.explore_every < 1) {
    return invalid_argument("concurrency tuner: bad options");
  }
  return std::unique_ptr<ConcurrencyTuner>(new ConcurrencyTuner(options, std::move(apply)));
}

ConcurrencyTuner::ConcurrencyTuner(ConcurrencyTunerOptions options, std::function<void(int)> apply)
    : options_(options),
      apply_(std::move(apply)),
      levels_(static_cast<std::size_t>(options.max_concurrent) + 1),
      cap_(options.min_concurrent) {
  if (apply_) apply_(cap_);
}

void ConcurrencyTuner::on_task_done(int level, double lane_seconds) {
  if (level < 1 || !(lane_seconds > 0.0)) return;
  int changed_to = 0;
  {
    std::lock_guard lock(mutex_);
    Level& l = levels_[static_cast<std::size_t>(std::min(level, options_.max_concurrent))];
    l.lane_seconds = l.samples == 0
                         ? lane_seconds
                         : l.lane_seconds + options_.ewma_weight * (lane_seconds - l.lane_seconds);
    ++l.samples;
    const int interval = options_.decision_interval > 0 ? options_.decision_interval : 2 * cap_ + 8;
    if (++since_decision_ < interval) return;
    since_decision_ = 0;
    ++decisions_;
    const int next = decide_locked();
    if (next != cap_) {
      cap_ = next;
      changed_to = next;
    }
  }
  if (changed_to != 0 && apply_) apply_(changed_to);
}

int ConcurrencyTuner::decide_locked() {
  auto measured = [&](int c) {
    return levels_[static_cast<std::size_t>(c)].samples >= options_.samples_per_level;
  };
  auto throughput = [&](int c) {
    return static_cast<double>(c) / levels_[static_cast<std::size_t>(c)].lane_seconds;
  };
  double best_x = 0;
  for (int c = options_.min_concurrent; c <= options_.max_concurrent; ++c) {
    if (measured(c)) best_x = std::max(best_x, throughput(c));
  }
  if (best_x == 0) return cap_;  // nothing measured yet: stay
  int best = cap_;
  for (int c = options_.min_concurrent; c <= options_.max_concurrent; ++c) {
    if (measured(c) && throughput(c) >= (1.0 - options_.tolerance) * best_x) {
      best = c;
      break;
    }
  }
  const int above = best + 1;
  if (above <= options_.max_concurrent) {
    const bool untried = !measured(above) && cap_ >= best;
    const bool due = decisions_ % static_cast<std::uint64_t>(options_.explore_every) == 0;
    if (untried || due) return above;
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
    out.push_back({c, l.samples, l.lane_seconds, static_cast<double>(c) / l.lane_seconds});
  }
  return out;
}

}  // namespace segmentor
