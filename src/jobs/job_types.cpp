#include "jobs/job_types.h"

#include <string>

namespace segmentor {

std::string to_string(const JobKey& key) {
  return key.job_id + "/" + std::string(to_string(key.asset_kind));
}

std::string_view to_string(AssetOutcome outcome) {
  switch (outcome) {
    case AssetOutcome::kDone:
      return "done";
    case AssetOutcome::kFailed:
      return "failed";
  }
  return "unknown";
}

Result<AssetOutcome> parse_asset_outcome(std::string_view text) {
  if (text == "done") return AssetOutcome::kDone;
  if (text == "failed") return AssetOutcome::kFailed;
  return invalid_argument("unknown asset outcome '" + std::string(text) + "'");
}

std::string_view to_string(CompletionReason reason) {
  switch (reason) {
    case CompletionReason::kNone:
      return "none";
    case CompletionReason::kZeroAssets:
      return "zero_assets";
    case CompletionReason::kAllAccounted:
      return "all_accounted";
    case CompletionReason::kThreshold:
      return "threshold";
    case CompletionReason::kWatermark:
      return "watermark";
  }
  return "unknown";
}

Result<CompletionReason> parse_completion_reason(std::string_view text) {
  for (CompletionReason reason :
       {CompletionReason::kNone, CompletionReason::kZeroAssets, CompletionReason::kAllAccounted,
        CompletionReason::kThreshold, CompletionReason::kWatermark}) {
    if (text == to_string(reason)) return reason;
  }
  return invalid_argument("unknown completion reason '" + std::string(text) + "'");
}

}  // namespace segmentor
