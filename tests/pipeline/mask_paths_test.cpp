#include "pipeline/mask_paths.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace segmentor {
namespace {

TEST(MaskPathsTest, FollowsTheContractLayoutPerAssetKind) {
  const MaskLayout layout{"/data", "masks_foreground", "masks_people", "masks_product"};
  auto image = mask_paths_for(layout, AssetKind::kProductImage, "img-42");
  ASSERT_TRUE(image.ok()) << image.status().to_string();
  EXPECT_EQ(image->foreground, "/data/masks_foreground/product_images/img-42.png");
  EXPECT_EQ(image->people, "/data/masks_people/product_images/img-42.png");
  EXPECT_EQ(image->product, "/data/masks_product/product_images/img-42.png");

  auto frame = mask_paths_for(layout, AssetKind::kVideoFrame, "v1_f0003");
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(frame->product, "/data/masks_product/video_frames/v1_f0003.png");
}

TEST(MaskPathsTest, RelativeDataRootBecomesAbsolute) {
  const MaskLayout layout{"out", "fg", "pp", "pr"};
  auto paths = mask_paths_for(layout, AssetKind::kProductImage, "a");
  ASSERT_TRUE(paths.ok());
  EXPECT_TRUE(paths->product.is_absolute());
  EXPECT_EQ(paths->product.filename(), "a.png");
}

TEST(MaskPathsTest, RejectsIdsThatAreNotPlainFileNames) {
  const MaskLayout layout{"/data"};
  for (const std::string& bad :
       std::vector<std::string>{"", ".", "..", "../etc/passwd", "a/b", "a\\b", ".hidden",
                                std::string("nul\0byte", 8), "tab\there"}) {
    auto paths = mask_paths_for(layout, AssetKind::kProductImage, bad);
    ASSERT_FALSE(paths.ok()) << "accepted id '" << bad << "'";
    EXPECT_EQ(paths.status().code(), ErrorCode::kInvalidArgument);
  }
  EXPECT_TRUE(validate_asset_id("plain-name_01.v2").ok());
}

// The column is VARCHAR(500): characters, not bytes (the one check of it; issue 14).
TEST(MaskPathsTest, TheColumnLimitCountsCharactersNotBytes) {
  std::string wide_root = "/";
  // "/<root>/masks_product/product_images/i.png": the root takes what is left of 500 characters.
  const std::size_t rest = std::string("/masks_product/product_images/i.png").size();
  for (std::size_t i = 1; i + rest < 500; ++i) wide_root += "\xC3\xA9";  // é: 2 bytes each
  const MaskLayout fits{wide_root};
  auto paths = mask_paths_for(fits, AssetKind::kProductImage, "i");
  ASSERT_TRUE(paths.ok()) << paths.status().to_string();
  EXPECT_GT(paths->product.string().size(), 500u) << "more bytes than characters";
  const MaskLayout too_long{wide_root + "\xC3\xA9"};
  EXPECT_EQ(mask_paths_for(too_long, AssetKind::kProductImage, "i").status().code(),
            ErrorCode::kTooLarge);
}

TEST(MaskPathsTest, RejectsPathsLongerThanTheDatabaseColumn) {
  const MaskLayout layout{"/" + std::string(300, 'd')};
  auto paths = mask_paths_for(layout, AssetKind::kProductImage, std::string(200, 'i'));
  ASSERT_FALSE(paths.ok());
  EXPECT_EQ(paths.status().code(), ErrorCode::kTooLarge);
  EXPECT_NE(paths.status().message().find("500"), std::string::npos);
}

}  // namespace
}  // namespace segmentor
