#include "memory/oom_cause.h"

#include <algorithm>

namespace segmentor {

OomJudgement judge_out_of_memory(const MemorySnapshot& at_oom, std::int64_t largest_task_bytes,
                                 double memory_threshold) {
  OomJudgement judgement;
  judgement.budget_bytes = at_oom.budget_bytes();
  judgement.used_bytes = at_oom.reserved_bytes;
  const double headroom = std::clamp(1.0 - memory_threshold, 0.0, 1.0);
  const auto threshold_headroom =
      static_cast<std::int64_t>(static_cast<double>(judgement.budget_bytes) * headroom);
  judgement.margin_bytes = std::max<std::int64_t>(largest_task_bytes, threshold_headroom);
  const std::int64_t room = judgement.budget_bytes - judgement.used_bytes;
  // No room at all is always "near", whatever the margin.
  judgement.cause = room <= 0 || room < judgement.margin_bytes ? OomCause::kOverAdmission
                                                               : OomCause::kBelowBudget;
  return judgement;
}

std::string OomJudgement::describe() const {
  const std::int64_t room = budget_bytes - used_bytes;
  return "used " + format_bytes(used_bytes) + " of a " + format_bytes(budget_bytes) + " budget, " +
         format_bytes(room) + " free " + (cause == OomCause::kOverAdmission ? "< " : ">= ") +
         "margin " + format_bytes(margin_bytes);
}

const char* to_string(OomCause cause) {
  return cause == OomCause::kOverAdmission ? "over-admission" : "below budget";
}

}  // namespace segmentor
