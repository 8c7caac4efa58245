#include "memory/oom_cause.h"

#include <gtest/gtest.h>

namespace segmentor {
namespace {

constexpr std::int64_t kMiB = 1024 * 1024;

// A card of `total` with `reserved` held by us, a cap of `cap` (0 = none), nobody else on it.
MemorySnapshot card(std::int64_t total, std::int64_t reserved, std::int64_t cap = 0) {
  MemorySnapshot s;
  s.device_total_bytes = total;
  s.device_free_bytes = total - reserved;
  s.reserved_bytes = reserved;
  s.process_limit_bytes = cap;
  return s;
}

TEST(OomCauseTest, WithinOneTaskOfTheBudgetIsOverAdmission) {
  // 8 GiB cap, 840 MiB tasks: a real OOM at the cap leaves less than a task free.
  const MemorySnapshot at_oom = card(80 * 1024 * kMiB, 7800 * kMiB, 8192 * kMiB);
  const OomJudgement j = judge_out_of_memory(at_oom, 840 * kMiB, 0.85);
  EXPECT_EQ(j.cause, OomCause::kOverAdmission);
  EXPECT_EQ(j.budget_bytes, 8192 * kMiB);
  EXPECT_EQ(j.used_bytes, 7800 * kMiB);
  // max(840 MiB, 15 % of 8 GiB = 1228.8 MiB)
  EXPECT_EQ(j.margin_bytes, static_cast<std::int64_t>(8192.0 * kMiB * 0.15));
}

TEST(OomCauseTest, FarBelowTheBudgetIsNot) {
  // Four stand-in tasks in flight held 4.6 GiB of the 8 GiB cap when an injected OOM struck.
  const MemorySnapshot at_oom = card(80 * 1024 * kMiB, 4710 * kMiB, 8192 * kMiB);
  const OomJudgement j = judge_out_of_memory(at_oom, 840 * kMiB, 0.85);
  EXPECT_EQ(j.cause, OomCause::kBelowBudget);
  EXPECT_NE(j.describe().find(">= margin"), std::string::npos) << j.describe();
}

TEST(OomCauseTest, TheLargestTaskWidensTheMarginBeyondTheThresholdsHeadroom) {
  // 1000-byte budget, threshold 0.9 (headroom 100): 300 free.
  const MemorySnapshot at_oom = card(1000, 700);
  EXPECT_EQ(judge_out_of_memory(at_oom, 100, 0.9).cause, OomCause::kBelowBudget);
  EXPECT_EQ(judge_out_of_memory(at_oom, 400, 0.9).cause, OomCause::kOverAdmission);
  // Nothing calibrated (CPU, fixed gates): the threshold's headroom alone.
  EXPECT_EQ(judge_out_of_memory(at_oom, 0, 0.6).cause, OomCause::kOverAdmission);
  EXPECT_EQ(judge_out_of_memory(at_oom, 0, 0.8).cause, OomCause::kBelowBudget);
}

TEST(OomCauseTest, ANeighbourHoldingTheCardShrinksTheBudgetAndCounts) {
  MemorySnapshot at_oom = card(1000, 100);
  at_oom.device_free_bytes = 50;  // somebody else holds 850
  const OomJudgement j = judge_out_of_memory(at_oom, 100, 1.0);
  EXPECT_EQ(j.budget_bytes, 150);
  EXPECT_EQ(j.cause, OomCause::kOverAdmission);
}

TEST(OomCauseTest, NoRoomAtAllIsAlwaysOverAdmission) {
  EXPECT_EQ(judge_out_of_memory(card(1000, 1000), 0, 1.0).cause, OomCause::kOverAdmission);
  EXPECT_EQ(judge_out_of_memory(card(0, 0), 0, 1.0).cause, OomCause::kOverAdmission);
}

}  // namespace
}  // namespace segmentor
