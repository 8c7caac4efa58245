#include "jobs/job_types.h"

#include <gtest/gtest.h>

namespace segmentor {
namespace {

TEST(JobTypesTest, NamesRoundTrip) {
  for (AssetKind type : {AssetKind::kProductImage, AssetKind::kVideoFrame}) {
    auto parsed = parse_asset_kind(to_string(type));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, type);
  }
  for (AssetOutcome outcome : {AssetOutcome::kDone, AssetOutcome::kFailed}) {
    auto parsed = parse_asset_outcome(to_string(outcome));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, outcome);
  }
  for (CompletionReason reason :
       {CompletionReason::kNone, CompletionReason::kZeroAssets, CompletionReason::kAllAccounted,
        CompletionReason::kThreshold, CompletionReason::kWatermark}) {
    auto parsed = parse_completion_reason(to_string(reason));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, reason);
  }
}

TEST(JobTypesTest, UnknownNamesAreRejected) {
  EXPECT_EQ(parse_asset_kind("Image").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parse_asset_outcome("ok").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(parse_completion_reason("").status().code(), ErrorCode::kInvalidArgument);
}

TEST(JobTypesTest, KeyPrintsJobAndType) {
  EXPECT_EQ(to_string(JobKey{"job-7", AssetKind::kVideoFrame}), "job-7/video");
}

}  // namespace
}  // namespace segmentor
