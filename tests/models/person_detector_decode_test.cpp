#include "models/person_detector_decode.h"

#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <string>

#include "models/model_loader.h"

namespace segmentor {
namespace {

constexpr int kClasses = 2;  // 0 = person, 1 = something else
constexpr int kBins = 4;
constexpr int kInput = 32;  // strides 8 and 16: grids 4x4 and 2x2

DetectorDecodeOptions options() {
  DetectorDecodeOptions o;
  o.num_classes = kClasses;
  o.strides = {8, 16};
  o.reg_bins = kBins;
  o.iou_threshold = 0.6;
  return o;
}

// The model's outputs for a 32x32 input, all scores 0 and all bins uniform unless set.
struct Outputs {
  std::vector<at::Tensor> tensors = {at::zeros({1, 16, kClasses}), at::zeros({1, 16, 4 * kBins}),
                                     at::zeros({1, 4, kClasses}), at::zeros({1, 4, 4 * kBins})};
  // `sides` holds the bin each side's probability sits on (a one-hot logit of 40).
  Outputs& cell(int level, int index, float person, float other, std::array<int, 4> sides) {
    tensors[2 * level][0][index][0] = person;
    tensors[2 * level][0][index][1] = other;
    for (int side = 0; side < 4; ++side)
      tensors[2 * level + 1][0][index][side * kBins + sides[side]] = 40.0f;
    return *this;
  }
};

TEST(PersonDetectorDecodeTest, BinsBecomeDistancesAroundTheCellCentre) {
  // Stride 8, cell (row 1, col 2): centre (20, 12); sides l 1, t 0, r 2, b 3 bins -> 8, 0, 16, 24.
  Outputs out;
  out.cell(0, 1 * 4 + 2, 0.9f, 0.0f, {1, 0, 2, 3});
  auto boxes = decode_person_detections(out.tensors, kInput, kInput, options());
  ASSERT_TRUE(boxes.ok()) << boxes.status().to_string();
  ASSERT_EQ(boxes->size(), 1u);
  EXPECT_FLOAT_EQ((*boxes)[0].x1, 12.0f);
  EXPECT_FLOAT_EQ((*boxes)[0].y1, 12.0f);
  EXPECT_FLOAT_EQ((*boxes)[0].x2, 32.0f);  // 36, clipped to the input
  EXPECT_FLOAT_EQ((*boxes)[0].y2, 32.0f);  // 36, clipped
  EXPECT_FLOAT_EQ((*boxes)[0].score, 0.9f);
}

TEST(PersonDetectorDecodeTest, DistanceIsTheExpectationOverBins) {
  // Uniform logits on every side: 1.5 bins = 12 px at stride 8. Cell (1, 1): centre (12, 12).
  Outputs out;
  out.tensors[0][0][5][0] = 0.7f;
  auto boxes = decode_person_detections(out.tensors, kInput, kInput, options());
  ASSERT_TRUE(boxes.ok());
  ASSERT_EQ(boxes->size(), 1u);
  EXPECT_FLOAT_EQ((*boxes)[0].x1, 0.0f);
  EXPECT_FLOAT_EQ((*boxes)[0].y1, 0.0f);
  EXPECT_FLOAT_EQ((*boxes)[0].x2, 24.0f);
  EXPECT_FLOAT_EQ((*boxes)[0].y2, 24.0f);
  EXPECT_EQ((*boxes)[0].anchor, 5);
  // At stride 16 the cells are numbered after the 16 stride-8 cells.
  Outputs coarse;
  coarse.tensors[2][0][0][0] = 0.7f;
  auto second = decode_person_detections(coarse.tensors, kInput, kInput, options());
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].anchor, 16);
  EXPECT_FLOAT_EQ((*second)[0].x2, 32.0f);  // 8 + 24, clipped to the input
}

TEST(PersonDetectorDecodeTest, ScoreThresholdAndNms) {
  Outputs out;
  out.cell(0, 5, 0.9f, 0.0f, {1, 1, 1, 1})     // centre (12, 12): box 4..20
      .cell(0, 6, 0.8f, 0.0f, {2, 1, 0, 1})    // centre (20, 12): box 4..20 too -> suppressed
      .cell(0, 15, 0.4f, 0.0f, {1, 1, 0, 0})   // below 0.5
      .cell(1, 3, 0.6f, 0.95f, {0, 0, 0, 0});  // another class scores higher: still a person
  auto boxes = decode_person_detections(out.tensors, kInput, kInput, options());
  ASSERT_TRUE(boxes.ok());
  ASSERT_EQ(boxes->size(), 2u);
  EXPECT_FLOAT_EQ((*boxes)[0].score, 0.9f);
  EXPECT_FLOAT_EQ((*boxes)[1].score, 0.6f);
  DetectorDecodeOptions low = options();
  low.min_score = 0.3;
  auto more = decode_person_detections(out.tensors, kInput, kInput, low);
  ASSERT_TRUE(more.ok());
  EXPECT_EQ(more->size(), 3u);
}

TEST(PersonDetectorDecodeTest, NoPersonIsNoBox) {
  Outputs out;
  out.cell(0, 3, 0.2f, 0.99f, {1, 1, 1, 1});
  auto boxes = decode_person_detections(out.tensors, kInput, kInput, options());
  ASSERT_TRUE(boxes.ok());
  EXPECT_TRUE(boxes->empty());
}

TEST(PersonDetectorDecodeTest, WrongShapesAreInternalErrors) {
  Outputs out;
  out.tensors.pop_back();
  EXPECT_EQ(decode_person_detections(out.tensors, kInput, kInput, options()).status().code(),
            ErrorCode::kInternal);
  Outputs wrong;
  wrong.tensors[1] = at::zeros({1, 16, 4 * kBins + 1});
  auto result = decode_person_detections(wrong.tensors, kInput, kInput, options());
  EXPECT_EQ(result.status().code(), ErrorCode::kInternal);
  EXPECT_NE(result.status().message().find("stride 8"), std::string::npos);
}

int count(const Mask& m) {
  int n = 0;
  for (auto v : m.values) n += v != 0;
  return n;
}

TEST(PersonBoxMaskTest, MapsBackThroughStretchAndGrowsByTheMargin) {
  // Input 32x32 stretched from a 64x16 source: x scales by 2, y by 0.5.
  YoloDetection box;
  box.x1 = 8, box.y1 = 8, box.x2 = 16, box.y2 = 24;
  const LetterboxGeometry g = stretch_geometry(32, 32);
  const Mask exact = person_box_mask({box}, g, 64, 16, 0.0);
  // Source x 16..32, y 4..12.
  EXPECT_EQ(count(exact), 16 * 8);
  EXPECT_EQ(exact.values[4 * 64 + 16], 255);
  EXPECT_EQ(exact.values[11 * 64 + 31], 255);
  EXPECT_EQ(exact.values[3 * 64 + 16], 0);
  EXPECT_EQ(exact.values[4 * 64 + 32], 0);
  // Margin 0.25: 2 px more on each side in x, 4 in y (input) -> x 12..36, y 2..14 in the source.
  const Mask grown = person_box_mask({box}, g, 64, 16, 0.25);
  EXPECT_EQ(count(grown), 24 * 12);
  EXPECT_EQ(grown.values[2 * 64 + 12], 255);
  EXPECT_EQ(grown.values[13 * 64 + 35], 255);
}

TEST(PersonBoxMaskTest, LetterboxPaddingIsRemovedAndBoxesUnite) {
  // A 64x32 source letterboxed into 32x32: scale 0.5, resized 32x16, pad_y 8.
  const LetterboxGeometry g = letterbox_geometry(64, 32, 32, 32);
  YoloDetection a, b;
  a.x1 = 0, a.y1 = 8, a.x2 = 4, a.y2 = 12;   // source x 0..8, y 0..8
  b.x1 = 2, b.y1 = 10, b.x2 = 6, b.y2 = 14;  // source x 4..12, y 4..12
  const Mask mask = person_box_mask({a, b}, g, 64, 32, 0.0);
  EXPECT_EQ(count(mask), 64 + 64 - 16);
  EXPECT_EQ(mask.values[0], 255);
  EXPECT_EQ(mask.values[11 * 64 + 11], 255);
  EXPECT_EQ(mask.values[12 * 64 + 11], 0);
  EXPECT_EQ(count(person_box_mask({}, g, 64, 32, 0.1)), 0);
}

// ---- the toy detector of tools/make_test_models.py, loaded as the runtime loads it ----

const std::filesystem::path kModels = SEGMENTOR_TEST_MODELS_DIR;

RgbImage gray(int width, int height) {
  return {width, height,
          std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3, 128)};
}

bool in(const Mask& m, int x, int y) {
  return m.values[static_cast<std::size_t>(y) * m.width + x] != 0;
}

TEST(PersonDetectorModelTest, ToyDetectorGivesItsKnownBoxes) {
  auto model = load_mask_model(kModels / "test-detector.pt", ModelOptions{});
  ASSERT_TRUE(model.ok()) << model.status().to_string();
  EXPECT_EQ((*model)->info().kind, ModelKind::kPersonDetector);
  // 128x64 source stretched to 64x64: x scales by 2. Boxes (DETECTOR_CELLS): A x 24..44, y 12..52
  // -> x 48..88; D x 40..56, y 8..24 -> x 80..112. B is suppressed, C scores 0.4.
  auto mask = (*model)->segment(gray(128, 64));
  ASSERT_TRUE(mask.ok()) << mask.status().to_string();
  int wrong = 0;
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 128; ++x) {
      const bool a = x >= 48 && x < 88 && y >= 12 && y < 52;
      const bool d = x >= 80 && x < 112 && y >= 8 && y < 24;
      wrong += in(*mask, x, y) != (a || d);
    }
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_FALSE(in(*mask, 20, 60));  // C
}

TEST(PersonDetectorModelTest, PersonMinScoreOverridesTheManifest) {
  ModelOptions options;
  options.person_min_score = 0.35;
  auto model = load_mask_model(kModels / "test-detector.pt", options);
  ASSERT_TRUE(model.ok());
  auto mask = (*model)->segment(gray(64, 64));
  ASSERT_TRUE(mask.ok());
  EXPECT_TRUE(in(*mask, 10, 60));  // C: x 8..24, y 56..64
  options.person_min_score = 0.95;
  auto strict = load_mask_model(kModels / "test-detector.pt", options);
  ASSERT_TRUE(strict.ok());
  auto none = (*strict)->segment(gray(64, 64));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->any());
}

}  // namespace
}  // namespace segmentor
