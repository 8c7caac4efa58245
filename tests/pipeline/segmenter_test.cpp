#include "pipeline/segmenter.h"

#include <gtest/gtest.h>

#include "fake_mask_model.h"

namespace segmentor {
namespace {

using testing::FakeMaskModel;
using testing::gray_image;
using testing::rect_mask;

TEST(SegmenterTest, ProductIsForegroundMinusPeople) {
  FakeMaskModel foreground(rect_mask(10, 8, 0, 0, 6, 8));
  FakeMaskModel people(rect_mask(10, 8, 4, 0, 10, 8));
  Segmenter segmenter(foreground, &people);
  auto masks = segmenter.segment(gray_image(10, 8));
  ASSERT_TRUE(masks.ok()) << masks.status().to_string();
  EXPECT_TRUE(masks->people_found);
  const Mask expected = rect_mask(10, 8, 0, 0, 4, 8);
  EXPECT_EQ(masks->product.values, expected.values);
  EXPECT_EQ(masks->foreground.values, rect_mask(10, 8, 0, 0, 6, 8).values);
}

TEST(SegmenterTest, NoPeopleMeansProductEqualsForeground) {
  FakeMaskModel foreground(rect_mask(5, 5, 1, 1, 4, 4));
  FakeMaskModel people(Mask::zeros(5, 5));
  Segmenter segmenter(foreground, &people);
  auto masks = segmenter.segment(gray_image(5, 5));
  ASSERT_TRUE(masks.ok());
  EXPECT_FALSE(masks->people_found);
  EXPECT_EQ(masks->product.values, masks->foreground.values);
  EXPECT_FALSE(masks->people.any());
}

TEST(SegmenterTest, WithoutAPeopleModelOnlyForegroundRuns) {
  FakeMaskModel foreground(rect_mask(4, 4, 0, 0, 2, 2));
  Segmenter segmenter(foreground, nullptr);
  auto masks = segmenter.segment(gray_image(4, 4));
  ASSERT_TRUE(masks.ok());
  EXPECT_EQ(foreground.calls, 1);
  EXPECT_FALSE(masks->people_found);
  EXPECT_EQ(masks->product.values, masks->foreground.values);
  EXPECT_EQ(masks->people.pixel_count(), 16U);
}

// ---- Note [People are decided by a detector] ----

TEST(SegmenterTest, NoConfidentPersonSkipsThePeopleModel) {
  // The selfie model marks the product as a person; the detector finds nobody.
  FakeMaskModel foreground(rect_mask(10, 8, 2, 2, 8, 8));
  FakeMaskModel people(rect_mask(10, 8, 2, 2, 8, 8));
  FakeMaskModel detector(Mask::zeros(10, 8));
  detector.set_kind(ModelKind::kPersonDetector);
  Segmenter segmenter(foreground, &people, &detector);
  auto masks = segmenter.segment(gray_image(10, 8));
  ASSERT_TRUE(masks.ok()) << masks.status().to_string();
  EXPECT_EQ(detector.calls, 1);
  EXPECT_EQ(people.calls, 0);
  EXPECT_FALSE(masks->people_found);
  EXPECT_FALSE(masks->people.any());
  EXPECT_EQ(masks->product.values, masks->foreground.values);
}

TEST(SegmenterTest, PeopleMaskCountsOnlyInsideThePersonBoxes) {
  // A person on the left (inside the box), the product on the right (outside it), both marked by
  // the people model.
  FakeMaskModel foreground(rect_mask(10, 8, 0, 0, 10, 8));
  FakeMaskModel people(rect_mask(10, 8, 0, 0, 10, 8));
  FakeMaskModel detector(rect_mask(10, 8, 0, 0, 4, 8));
  detector.set_kind(ModelKind::kPersonDetector);
  Segmenter segmenter(foreground, &people, &detector);
  auto masks = segmenter.segment(gray_image(10, 8));
  ASSERT_TRUE(masks.ok());
  EXPECT_EQ(people.calls, 1);
  EXPECT_TRUE(masks->people_found);
  EXPECT_EQ(masks->people.values, rect_mask(10, 8, 0, 0, 4, 8).values);
  EXPECT_EQ(masks->product.values, rect_mask(10, 8, 4, 0, 10, 8).values);
}

TEST(SegmenterTest, YoloSegPeopleModelGetsNoDetector) {
  FakeMaskModel foreground(rect_mask(6, 6, 0, 0, 6, 6));
  FakeMaskModel people(rect_mask(6, 6, 0, 0, 3, 6));
  people.set_kind(ModelKind::kYoloSeg);
  FakeMaskModel detector(Mask::zeros(6, 6));
  detector.set_kind(ModelKind::kPersonDetector);
  Segmenter segmenter(foreground, &people, &detector);
  EXPECT_EQ(segmenter.person_detector(), nullptr);
  auto masks = segmenter.segment(gray_image(6, 6));
  ASSERT_TRUE(masks.ok());
  EXPECT_EQ(detector.calls, 0);
  EXPECT_TRUE(masks->people_found);
}

TEST(SegmenterTest, DetectorOutOfMemoryIsPassedOn) {
  FakeMaskModel foreground(rect_mask(4, 4, 0, 0, 2, 2));
  FakeMaskModel people(rect_mask(4, 4, 0, 0, 2, 2));
  FakeMaskModel detector(out_of_memory("CUDA out of memory. Tried to allocate 20 MiB"));
  Segmenter segmenter(foreground, &people, &detector);
  auto masks = segmenter.segment(gray_image(4, 4));
  ASSERT_FALSE(masks.ok());
  EXPECT_EQ(masks.status().code(), ErrorCode::kOutOfMemory);
  EXPECT_EQ(people.calls, 0);
}

TEST(SegmenterTest, OutOfMemoryIsPassedOnNeverTurnedIntoAnEmptyMask) {
  FakeMaskModel foreground(rect_mask(4, 4, 0, 0, 2, 2));
  FakeMaskModel people(out_of_memory("CUDA out of memory. Tried to allocate 192 MiB"));
  Segmenter segmenter(foreground, &people);
  auto masks = segmenter.segment(gray_image(4, 4));
  ASSERT_FALSE(masks.ok());
  EXPECT_EQ(masks.status().code(), ErrorCode::kOutOfMemory);
}

TEST(SegmenterTest, AMaskOfTheWrongSizeIsAnError) {
  FakeMaskModel foreground(rect_mask(3, 3, 0, 0, 1, 1), "broken");
  Segmenter segmenter(foreground, nullptr);
  auto masks = segmenter.segment(gray_image(4, 4));
  ASSERT_FALSE(masks.ok());
  EXPECT_EQ(masks.status().code(), ErrorCode::kInternal);
  EXPECT_NE(masks.status().message().find("broken"), std::string::npos);
}

}  // namespace
}  // namespace segmentor
