#include "imaging/mask_ops.h"

#include <gtest/gtest.h>

#include "support/image_fixtures.h"

namespace segmentor {
namespace {

TEST(SubtractMaskTest, RemovesPeopleFromForeground) {
  const Mask foreground = fixtures::rectangle_mask(10, 6, 0, 0, 6, 6);
  const Mask people = fixtures::rectangle_mask(10, 6, 4, 2, 10, 4);
  const Result<Mask> product = subtract_mask(foreground, people);
  ASSERT_TRUE(product.ok()) << product.status().to_string();
  ASSERT_EQ(product->width, 10);
  ASSERT_EQ(product->height, 6);
  for (int y = 0; y < 6; ++y) {
    for (int x = 0; x < 10; ++x) {
      const bool in_fg = x < 6;
      const bool in_people = x >= 4 && y >= 2 && y < 4;
      EXPECT_EQ(product->values[static_cast<std::size_t>(y * 10 + x)],
                (in_fg && !in_people) ? 255 : 0)
          << x << "," << y;
    }
  }
}

TEST(SubtractMaskTest, AnyNonZeroCountsAndOutputIsBinary) {
  const Mask foreground{2, 2, {1, 128, 0, 255}};
  const Mask people{2, 2, {0, 7, 9, 0}};
  const Result<Mask> product = subtract_mask(foreground, people);
  ASSERT_TRUE(product.ok());
  EXPECT_EQ(product->values, (std::vector<std::uint8_t>{255, 0, 0, 255}));
}

TEST(SubtractMaskTest, SizeMismatchIsAnError) {
  const Result<Mask> product = subtract_mask(Mask::zeros(4, 3), Mask::zeros(3, 4));
  ASSERT_FALSE(product.ok());
  EXPECT_EQ(product.status().code(), ErrorCode::kInvalidArgument);
  Mask short_buffer = Mask::zeros(4, 3);
  short_buffer.values.pop_back();
  EXPECT_FALSE(subtract_mask(short_buffer, Mask::zeros(4, 3)).ok());
}

TEST(IntersectMaskTest, BothSetAndBinary) {
  const Mask a{2, 2, {1, 128, 0, 255}};
  const Mask b{2, 2, {0, 7, 9, 3}};
  const Result<Mask> both = intersect_mask(a, b);
  ASSERT_TRUE(both.ok());
  EXPECT_EQ(both->values, (std::vector<std::uint8_t>{0, 255, 0, 255}));
  EXPECT_EQ(intersect_mask(Mask::zeros(4, 3), Mask::zeros(3, 4)).status().code(),
            ErrorCode::kInvalidArgument);
}

TEST(MaskIouTest, Values) {
  EXPECT_DOUBLE_EQ(mask_iou(Mask::zeros(5, 5), Mask::zeros(5, 5)), 1.0);
  const Mask a = fixtures::rectangle_mask(10, 1, 0, 0, 10, 1);  // 10 pixels
  const Mask b = fixtures::rectangle_mask(10, 1, 5, 0, 10, 1);  // 5 of them
  EXPECT_DOUBLE_EQ(mask_iou(a, a), 1.0);
  EXPECT_DOUBLE_EQ(mask_iou(a, b), 0.5);
  const Mask c = fixtures::rectangle_mask(10, 1, 0, 0, 5, 1);
  EXPECT_DOUBLE_EQ(mask_iou(b, c), 0.0);
  const Mask d = fixtures::rectangle_mask(10, 1, 3, 0, 8, 1);  // overlaps c in 2, union 8
  EXPECT_DOUBLE_EQ(mask_iou(c, d), 2.0 / 8.0);
  EXPECT_DOUBLE_EQ(mask_iou(Mask::zeros(5, 5), a), 0.0);
  EXPECT_DOUBLE_EQ(mask_iou(a, Mask::zeros(10, 2)), 0.0);  // size mismatch
}

}  // namespace
}  // namespace segmentor
