#include "bench/soak_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace segmentor {

namespace {

constexpr double kSecondsPerHour = 3600.0;
constexpr double kMiB = 1024.0 * 1024.0;
constexpr std::size_t kMarkdownRounds = 40;  // rows of the per-round table, at most

std::string fixed(double value, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, value);
  return buffer;
}

nlohmann::ordered_json fit_json(const LineFit& fit, const char* slope_name) {
  nlohmann::ordered_json j;
  j[slope_name] = fit.slope;
  j["intercept"] = fit.intercept;
  j["r2"] = fit.r2;
  j["slope_error"] = fit.slope_error;
  j["points"] = fit.points;
  return j;
}

}  // namespace

LineFit fit_line(const std::vector<double>& x, const std::vector<double>& y) {
  LineFit fit;
  const std::size_t n = std::min(x.size(), y.size());
  fit.points = static_cast<int>(n);
  if (n < 2) return fit;
  double mean_x = 0, mean_y = 0;
  for (std::size_t i = 0; i < n; ++i) {
    mean_x += x[i];
    mean_y += y[i];
  }
  mean_x /= static_cast<double>(n);
  mean_y /= static_cast<double>(n);
  double sxx = 0, sxy = 0, syy = 0;
  for (std::size_t i = 0; i < n; ++i) {
    sxx += (x[i] - mean_x) * (x[i] - mean_x);
    sxy += (x[i] - mean_x) * (y[i] - mean_y);
    syy += (y[i] - mean_y) * (y[i] - mean_y);
  }
  if (sxx <= 0) return fit;
  fit.slope = sxy / sxx;
  fit.intercept = mean_y - fit.slope * mean_x;
  if (syy > 0) {
    double residual = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double e = y[i] - (fit.intercept + fit.slope * x[i]);
      residual += e * e;
    }
    fit.r2 = 1.0 - residual / syy;
    if (n >= 3) fit.slope_error = std::sqrt(residual / static_cast<double>(n - 2) / sxx);
  }
  return fit;
}

void analyse_soak(SoakReport& r) {
  const double warmup_seconds = r.thresholds.warmup_fraction * r.duration_seconds;
  std::vector<const SoakSample*> steady;
  for (const SoakSample& s : r.samples) {
    // At least the first round is warm-up: it grows caches and thread pools once.
    if (s.round > 1 && s.t_seconds >= warmup_seconds) steady.push_back(&s);
  }
  if (steady.size() < 2) {  // a short soak: fit what there is rather than nothing
    steady.clear();
    for (const SoakSample& s : r.samples) steady.push_back(&s);
  }
  std::vector<double> hours, rss, allocated, reserved, fps;
  for (const SoakSample* s : steady) {
    hours.push_back(s->t_seconds / kSecondsPerHour);
    rss.push_back(static_cast<double>(s->rss_bytes));
    allocated.push_back(static_cast<double>(s->gpu_allocated_bytes));
    reserved.push_back(static_cast<double>(s->gpu_reserved_bytes));
    fps.push_back(s->round_fps);
  }
  r.steady_from_round = steady.empty() ? 0 : steady.front()->round;
  r.rss = fit_line(hours, rss);
  // The floor: the lowest reading of each of up to kFloorWindows windows of at least 3 readings.
  {
    const std::size_t n = rss.size();
    const std::size_t windows = std::min<std::size_t>(kFloorWindows, n / 3);
    std::vector<double> floor_hours, floor_rss;
    for (std::size_t w = 0; w < windows; ++w) {
      const std::size_t begin = w * n / windows, end = (w + 1) * n / windows;
      std::size_t lowest = begin;
      for (std::size_t i = begin; i < end; ++i) {
        if (rss[i] < rss[lowest]) lowest = i;
      }
      floor_hours.push_back(hours[lowest]);
      floor_rss.push_back(rss[lowest]);
    }
    r.rss_floor = windows >= 2 ? fit_line(floor_hours, floor_rss) : r.rss;
  }
  r.gpu_allocated = fit_line(hours, allocated);
  r.gpu_reserved = fit_line(hours, reserved);
  r.throughput = fit_line(hours, fps);
  if (!r.samples.empty()) {
    r.frames_done = r.samples.back().frames_done;
    r.frames_lost = r.samples.back().frames_lost;
  }
  if (steady.size() >= 2) {
    const double span_hours = hours.back() - hours.front();
    const auto frames =
        static_cast<double>(steady.back()->frames_done - steady.front()->frames_done);
    r.frames_per_hour = span_hours > 0 ? frames / span_hours : 0;
  }
  if (r.frames_per_hour > 0) {
    r.rss_bytes_per_frame = r.rss_floor.slope / r.frames_per_hour;
    r.gpu_allocated_bytes_per_frame = r.gpu_allocated.slope / r.frames_per_hour;
  }
  // Note [A leak verdict needs a long enough soak]
  const double limit = r.thresholds.leak_bytes_per_hour;
  const auto surely_above = [limit](const LineFit& f) {
    return f.slope - 2 * f.slope_error > limit;
  };
  const auto surely_below = [limit](const LineFit& f) {
    return f.slope + 2 * f.slope_error <= limit;
  };
  const bool rss_leak = surely_above(r.rss_floor);
  const bool allocated_leak = surely_above(r.gpu_allocated);
  const bool judged = steady.size() >= 3;
  r.leak_suspected = judged && (rss_leak || allocated_leak);
  r.inconclusive =
      judged && !r.leak_suspected && !(surely_below(r.rss_floor) && surely_below(r.gpu_allocated));
  std::string verdict;
  if (!judged) {
    verdict = "too few rounds to judge (" + std::to_string(steady.size()) + " steady)";
  } else if (r.leak_suspected) {
    verdict = std::string("LEAK SUSPECTED: ") + (rss_leak ? "host RSS floor " : "") +
              (allocated_leak ? "GPU allocated " : "") + "grows faster than " +
              fixed(limit / kMiB, 1) + " MiB/h";
  } else if (r.inconclusive) {
    // The error of a slope shrinks with the span to the power 3/2 at a fixed reading rate.
    const LineFit& widest =
        r.rss_floor.slope_error >= r.gpu_allocated.slope_error ? r.rss_floor : r.gpu_allocated;
    const double span_hours = hours.back() - hours.front();
    const double needed = widest.slope_error > 0 && limit > 0
                              ? span_hours * std::pow(2 * widest.slope_error / limit, 2.0 / 3.0)
                              : 0;
    verdict = "inconclusive: host RSS floor " + fixed(r.rss_floor.slope / kMiB, 1) + " ± " +
              fixed(2 * r.rss_floor.slope_error / kMiB, 1) + " MiB/h, GPU allocated " +
              fixed(r.gpu_allocated.slope / kMiB, 1) + " ± " +
              fixed(2 * r.gpu_allocated.slope_error / kMiB, 1) + " MiB/h against a limit of " +
              fixed(limit / kMiB, 1) + " MiB/h; a steady part of about " + fixed(needed * 60, 0) +
              " min would decide";
  } else {
    verdict = "no leak: host RSS floor " + fixed(r.rss_floor.slope / kMiB, 2) +
              " MiB/h, GPU allocated " + fixed(r.gpu_allocated.slope / kMiB, 2) + " MiB/h (limit " +
              fixed(limit / kMiB, 1) + " MiB/h)";
  }
  r.verdict = verdict;
}

std::string soak_to_json(const SoakReport& r) {
  nlohmann::ordered_json j;
  j["kind"] = "soak";
  j["card"] = r.card;
  j["date"] = r.date;
  j["device"] = r.device;
  j["gate"] = r.gate;
  j["models"] = r.models;
  j["test_models"] = r.test_models;
  j["duration_seconds"] = r.duration_seconds;
  j["wall_seconds"] = r.wall_seconds;
  j["frames_per_round"] = r.frames_per_round;
  j["warmup_fraction"] = r.thresholds.warmup_fraction;
  j["leak_bytes_per_hour_limit"] = r.thresholds.leak_bytes_per_hour;
  j["steady_from_round"] = r.steady_from_round;
  j["rss"] = fit_json(r.rss, "bytes_per_hour");
  j["rss_floor"] = fit_json(r.rss_floor, "bytes_per_hour");
  j["gpu_allocated"] = fit_json(r.gpu_allocated, "bytes_per_hour");
  j["gpu_reserved"] = fit_json(r.gpu_reserved, "bytes_per_hour");
  j["throughput"] = fit_json(r.throughput, "fps_per_hour");
  j["frames_per_hour"] = r.frames_per_hour;
  j["rss_bytes_per_frame"] = r.rss_bytes_per_frame;
  j["gpu_allocated_bytes_per_frame"] = r.gpu_allocated_bytes_per_frame;
  j["frames_done"] = r.frames_done;
  j["frames_lost"] = r.frames_lost;
  j["leak_suspected"] = r.leak_suspected;
  j["inconclusive"] = r.inconclusive;
  j["verdict"] = r.verdict;
  auto& samples = j["samples"] = nlohmann::ordered_json::array();
  for (const SoakSample& s : r.samples) {
    nlohmann::ordered_json o;
    o["t"] = s.t_seconds;
    o["round"] = s.round;
    o["frames_done"] = s.frames_done;
    o["frames_lost"] = s.frames_lost;
    o["fps"] = s.round_fps;
    o["p95_ms"] = s.round_p95_ms;
    o["rss"] = s.rss_bytes;
    o["gpu_allocated"] = s.gpu_allocated_bytes;
    o["gpu_reserved"] = s.gpu_reserved_bytes;
    samples.push_back(std::move(o));
  }
  return j.dump(2) + "\n";
}

std::string soak_to_markdown(const SoakReport& r) {
  std::string out;
  out += "Soak on " + r.card + " (" + r.device + "), " + r.date + ", gate " + r.gate + ", models ";
  for (std::size_t i = 0; i < r.models.size(); ++i) out += (i ? " + " : "") + r.models[i];
  out += r.test_models ? " (test models)" : "";
  out += "\n\n";
  out += "| measure | value |\n|---|---|\n";
  out += "| ran | " + fixed(r.wall_seconds / 60.0, 1) + " min, " +
         std::to_string(r.samples.size()) + " rounds of " + std::to_string(r.frames_per_round) +
         " frames |\n";
  out += "| frames done / lost | " + std::to_string(r.frames_done) + " / " +
         std::to_string(r.frames_lost) + " |\n";
  out += "| steady part | from round " + std::to_string(r.steady_from_round) + ", " +
         fixed(r.frames_per_hour, 0) + " frames/h |\n";
  out += "| host RSS floor slope (judged) | " + fixed(r.rss_floor.slope / kMiB, 3) + " ± " +
         fixed(2 * r.rss_floor.slope_error / kMiB, 3) + " MiB/h (" +
         fixed(r.rss_bytes_per_frame, 2) + " B/frame, " + std::to_string(r.rss_floor.points) +
         " window minima) |\n";
  out += "| host RSS slope, every reading | " + fixed(r.rss.slope / kMiB, 3) + " MiB/h (r² " +
         fixed(r.rss.r2, 2) + ") |\n";
  out += "| GPU allocated slope | " + fixed(r.gpu_allocated.slope / kMiB, 3) + " ± " +
         fixed(2 * r.gpu_allocated.slope_error / kMiB, 3) + " MiB/h (" +
         fixed(r.gpu_allocated_bytes_per_frame, 2) + " B/frame) |\n";
  out += "| GPU reserved slope | " + fixed(r.gpu_reserved.slope / kMiB, 3) + " MiB/h |\n";
  out += "| throughput slope | " + fixed(r.throughput.slope, 3) + " frames/s per hour (from " +
         fixed(r.throughput.intercept, 2) + " frames/s) |\n";
  out += "| verdict | " + r.verdict + " |\n\n";
  out +=
      "| round | t (min) | frames/s | p95 (ms) | RSS (MiB) | GPU alloc (MiB) | GPU reserved (MiB) "
      "|\n";
  out += "|---|---|---|---|---|---|---|\n";
  const std::size_t step =
      std::max<std::size_t>(1, (r.samples.size() + kMarkdownRounds - 1) / kMarkdownRounds);
  for (std::size_t i = 0; i < r.samples.size(); ++i) {
    if (i % step != 0 && i + 1 != r.samples.size()) continue;
    const SoakSample& s = r.samples[i];
    out += "| " + std::to_string(s.round) + " | " + fixed(s.t_seconds / 60.0, 1) + " | " +
           fixed(s.round_fps, 2) + " | " + fixed(s.round_p95_ms, 0) + " | " +
           fixed(static_cast<double>(s.rss_bytes) / kMiB, 1) + " | " +
           fixed(static_cast<double>(s.gpu_allocated_bytes) / kMiB, 1) + " | " +
           fixed(static_cast<double>(s.gpu_reserved_bytes) / kMiB, 1) + " |\n";
  }
  return out;
}

}  // namespace segmentor
