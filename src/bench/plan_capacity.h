// Capacity planning behind `segmentor plan`: from the calibration measured on the card in hand,
// how many HD and FHD tasks fit cards of other sizes, and the throughput to expect there.
// Pure functions over a CalibrationTable and a throughput probe; no device code here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "memory/calibration.h"

namespace segmentor {

// Note [Expected throughput on other cards]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// Memory decides how many tasks a card can hold at once (CalibrationTable::safe_concurrency at
// GPU_MEMORY_THRESHOLD); compute decides how fast they go. We can only measure compute on the card
// in hand, so the expected frames/s on a card of X GiB is what this card does with the concurrency
// X GiB allows (capped at max_measured_concurrency: past a few tasks one GPU is saturated and more
// only adds latency). That is right for smaller cards of the same generation and optimistic for
// slower ones: read it as an upper bound from memory's point of view.

struct PlanOptions {
  std::vector<int> cards_gib = {8, 16, 24, 32};
  double threshold = 0.85;           // GPU_MEMORY_THRESHOLD
  int max_measured_concurrency = 8;  // the probe is asked for at most this concurrency
};

struct PlanRow {
  int card_gib = 0;
  std::optional<int> safe_hd;  // none: no calibration (a CPU run)
  std::optional<int> safe_fhd;
  std::optional<double> fps_hd;  // none: no probe, or nothing fits
  std::optional<double> fps_fhd;
};

struct PlanReport {
  std::string card;
  std::string device;
  std::string date;
  std::vector<std::string> models;
  double threshold = 0;
  bool calibrated = false;
  std::int64_t resident_bytes = 0;
  std::optional<std::int64_t> task_hd_bytes;
  std::optional<std::int64_t> task_fhd_bytes;
  std::string throughput_method;          // how fps_* were obtained
  std::map<int, double> measured_hd_fps;  // concurrency -> frames/s on this card
  std::map<int, double> measured_fhd_fps;
  std::vector<PlanRow> rows;
};

// Measures frames/s on the card in hand at `concurrency` with all-FHD (`fhd`) or all-HD frames.
using ThroughputProbe = std::function<Result<double>(int concurrency, bool fhd)>;

// Fills calibrated, resident/task bytes and rows; calls `probe` (may be empty) once per distinct
// concurrency and size it needs. A probe error is returned. Leaves card/device/date/models alone.
Result<PlanReport> plan_capacity(const CalibrationTable& table, const PlanOptions& options,
                                 const ThroughputProbe& probe);

std::string plan_to_text(const PlanReport& report);  // an aligned table with a short preamble
std::string plan_to_json(const PlanReport& report);
std::string plan_to_markdown(const PlanReport& report);  // the table docs/capacity.md carries

}  // namespace segmentor
