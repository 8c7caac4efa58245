#include "models/yolo_seg_decode.h"

#include <cmath>

#include <gtest/gtest.h>

#include "bilinear_reference.h"

namespace segmentor {
namespace {

constexpr int kClasses = 2;  // 0 = person, 1 = something else
constexpr int kRows = 4 + kClasses + 32;

// Predictions [1, 4+2+32, n] built column by column.
class Predictions {
 public:
  explicit Predictions(int n) : t_(at::zeros({1, kRows, n})) {}
  Predictions& box(int i, float cx, float cy, float w, float h, float person, float other,
                   std::vector<float> coefficients = {1.0f}) {
    auto col = t_[0].select(1, i);
    col[0] = cx;
    col[1] = cy;
    col[2] = w;
    col[3] = h;
    col[4] = person;
    col[5] = other;
    for (std::size_t c = 0; c < coefficients.size(); ++c) {
      col[static_cast<std::int64_t>(6 + c)] = coefficients[c];
    }
    return *this;
  }
  const at::Tensor& tensor() const { return t_; }

 private:
  at::Tensor t_;
};

YoloDecodeOptions options() {
  YoloDecodeOptions o;
  o.num_classes = kClasses;
  return o;
}

// Prototypes [1,32,size,size]; channel 0 = +10 everywhere unless changed.
at::Tensor prototypes(int size) {
  at::Tensor p = at::zeros({1, 32, size, size});
  p[0][0].fill_(10.0);
  return p;
}

struct Rect {
  int x0, y0, x1, y1;
};

void expect_rect(const Mask& mask, const Rect& r) {
  int wrong = 0;
  for (int y = 0; y < mask.height; ++y) {
    for (int x = 0; x < mask.width; ++x) {
      const bool in = x >= r.x0 && x < r.x1 && y >= r.y0 && y < r.y1;
      const auto v = mask.values[static_cast<std::size_t>(y) * mask.width + x];
      if (v != (in ? 255 : 0) && ++wrong <= 5) {
        ADD_FAILURE() << "pixel (" << x << "," << y << ") is " << int{v};
      }
    }
  }
  EXPECT_EQ(wrong, 0);
}

YoloDetection det(float x1, float y1, float x2, float y2, float score, std::int64_t anchor) {
  return {x1, y1, x2, y2, score, anchor};
}

TEST(BoxIouTest, KnownValues) {
  EXPECT_FLOAT_EQ(box_iou(det(0, 0, 10, 10, 1, 0), det(0, 0, 10, 10, 1, 1)), 1.0f);
  EXPECT_FLOAT_EQ(box_iou(det(0, 0, 10, 10, 1, 0), det(5, 0, 15, 10, 1, 1)), 50.0f / 150.0f);
  EXPECT_FLOAT_EQ(box_iou(det(0, 0, 10, 10, 1, 0), det(10, 0, 20, 10, 1, 1)), 0.0f);
  EXPECT_FLOAT_EQ(box_iou(det(0, 0, 0, 0, 1, 0), det(0, 0, 0, 0, 1, 1)), 0.0f);
}

TEST(NmsTest, KeepsBestAndDropsOverlapsAboveThreshold) {
  std::vector<YoloDetection> boxes = {
      det(0, 0, 10, 10, 0.6f, 0),    // IoU with #1 = 100/110: dropped
      det(0, 0, 10, 11, 0.9f, 1),    // best
      det(20, 0, 30, 10, 0.7f, 2),   // disjoint from #1: kept
      det(25, 0, 35, 10, 0.65f, 3),  // IoU with #2 = 50/150
  };
  auto kept = non_max_suppression(boxes, 0.3, 300);
  ASSERT_EQ(kept.size(), 2u);  // IoU(#3, #2) = 50/150 > 0.3: dropped
  EXPECT_EQ(kept[0].anchor, 1);
  EXPECT_EQ(kept[1].anchor, 2);

  kept = non_max_suppression(boxes, 0.5, 300);
  ASSERT_EQ(kept.size(), 3u);  // 1/3 <= 0.5 keeps #3
  EXPECT_EQ(kept[2].anchor, 3);
}

TEST(NmsTest, IouNotAboveThresholdIsKeptAndMaxDetectionsCaps) {
  std::vector<YoloDetection> boxes = {det(0, 0, 10, 10, 0.9f, 0), det(5, 0, 15, 10, 0.8f, 1),
                                      det(50, 0, 60, 10, 0.7f, 2)};
  auto kept = non_max_suppression(boxes, 50.0 / 150.0 + 1e-6, 300);
  EXPECT_EQ(kept.size(), 3u);
  kept = non_max_suppression(boxes, 0.0, 300);
  EXPECT_EQ(kept.size(), 2u);
  kept = non_max_suppression(boxes, 1.0, 2);
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[1].anchor, 1);
}

TEST(DecodePersonBoxesTest, ArgmaxPersonAboveThresholdThenNms) {
  Predictions p(6);
  p.box(0, 32, 32, 20, 20, 0.9f, 0.1f)    // kept
      .box(1, 33, 32, 20, 20, 0.8f, 0.1f)   // suppressed by #0 (IoU 0.9)
      .box(2, 10, 10, 8, 8, 0.6f, 0.9f)     // best class is not person
      .box(3, 50, 50, 8, 8, 0.49f, 0.0f)    // below 0.5
      .box(4, 50, 10, 8, 8, 0.5f, 0.0f);    // exactly 0.5: kept (>=)
  auto boxes = decode_person_boxes(p.tensor(), options());
  ASSERT_TRUE(boxes.ok()) << boxes.status().to_string();
  ASSERT_EQ(boxes->size(), 2u);
  EXPECT_EQ((*boxes)[0].anchor, 0);
  EXPECT_FLOAT_EQ((*boxes)[0].x1, 22);
  EXPECT_FLOAT_EQ((*boxes)[0].y1, 22);
  EXPECT_FLOAT_EQ((*boxes)[0].x2, 42);
  EXPECT_FLOAT_EQ((*boxes)[0].y2, 42);
  EXPECT_EQ((*boxes)[1].anchor, 4);

  YoloDecodeOptions other = options();
  other.person_class = 1;
  boxes = decode_person_boxes(p.tensor(), other);
  ASSERT_TRUE(boxes.ok());
  ASSERT_EQ(boxes->size(), 1u);
  EXPECT_EQ((*boxes)[0].anchor, 2);
}

TEST(DecodePersonBoxesTest, WrongShapeIsInternal) {
  auto wrong = decode_person_boxes(at::zeros({1, 4 + 80 + 32, 10}), options());
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), ErrorCode::kInternal);
  EXPECT_FALSE(decode_person_boxes(at::zeros({kRows, 10}), options()).ok());
}

TEST(DecodeYoloSegTest, NoPersonIsAllZeroAtSourceSize) {
  Predictions p(3);
  p.box(0, 32, 32, 20, 20, 0.2f, 0.9f);
  auto mask = decode_yolo_seg(p.tensor(), prototypes(16), letterbox_geometry(90, 50, 64, 64), 90,
                              50, options());
  ASSERT_TRUE(mask.ok()) << mask.status().to_string();
  EXPECT_EQ(mask->width, 90);
  EXPECT_EQ(mask->height, 50);
  EXPECT_EQ(mask->values.size(), 90u * 50u);
  EXPECT_FALSE(mask->any());
}

const double kInside = 1.0 / (1.0 + std::exp(-10.0));  // sigmoid of prototype channel 0

TEST(DecodeYoloSegTest, LetterboxPaddingIsRemovedForATallSource) {
  // Source 64x128 in a 64x64 input: scale 0.5, resized 32x64, pad_x 16. Prototypes 16x16 (1/4).
  // Box x 24..40, y 16..48 (input) = prototype cells x 6..10, y 4..12; in the source roughly
  // x 16..48, y 32..96 (bilinear rounds the corners).
  const LetterboxGeometry g = letterbox_geometry(64, 128, 64, 64);
  ASSERT_EQ(g.pad_x, 16);
  ASSERT_EQ(g.pad_y, 0);
  ASSERT_EQ(g.resized_width, 32);
  ASSERT_EQ(g.resized_height, 64);
  Predictions p(1);
  p.box(0, 32, 32, 16, 32, 0.9f, 0.0f);
  auto mask = decode_yolo_seg(p.tensor(), prototypes(16), g, 64, 128, options());
  ASSERT_TRUE(mask.ok()) << mask.status().to_string();

  const auto expected = test::box_mask_reference({16, 16, 64, 64, 16, 0, 32, 64}, 6, 4, 10, 12,
                                                 kInside, 64, 128);
  EXPECT_EQ(test::expect_matches(*mask, expected), 0);
  EXPECT_GT(test::count_full(expected), 28 * 60);
  EXPECT_EQ(mask->values[64 * 64 + 32], 255);
  EXPECT_EQ(mask->values[64 * 64 + 12], 0);
  // Resizing the whole 16x16 map, padding included, gives a clearly different mask: this test
  // fails if the padding is not removed.
  const auto naive = test::box_mask_reference({16, 16, 64, 64, 0, 0, 64, 64}, 6, 4, 10, 12,
                                              kInside, 64, 128);
  EXPECT_GT(test::count_mismatches(*mask, naive), 500);
}

TEST(DecodeYoloSegTest, WideSourceWithPaddingOnTop) {
  // Source 160x80: scale 0.4, resized 64x32, pad_y 16. Prototypes at the input size (64x64).
  // Box x 16..48, y 24..40 -> source about x 40..120, y 20..60.
  const LetterboxGeometry g = letterbox_geometry(160, 80, 64, 64);
  ASSERT_EQ(g.pad_y, 16);
  ASSERT_EQ(g.resized_height, 32);
  Predictions p(1);
  p.box(0, 32, 32, 32, 16, 0.9f, 0.0f);
  auto mask = decode_yolo_seg(p.tensor(), prototypes(64), g, 160, 80, options());
  ASSERT_TRUE(mask.ok()) << mask.status().to_string();
  const auto expected = test::box_mask_reference({64, 64, 64, 64, 0, 16, 64, 32}, 16, 24, 48, 40,
                                                 kInside, 160, 80);
  EXPECT_EQ(test::expect_matches(*mask, expected), 0);
  EXPECT_GT(test::count_full(expected), 78 * 38);
  const auto naive = test::box_mask_reference({64, 64, 64, 64, 0, 0, 64, 64}, 16, 24, 48, 40,
                                              kInside, 160, 80);
  EXPECT_GT(test::count_mismatches(*mask, naive), 500);
}

TEST(DecodeYoloSegTest, MaskComesFromCoefficientsTimesPrototypes) {
  // Channel 0 is +10 on the left half, -10 on the right; the box spans both halves, so only its
  // left half is person. Coefficient -1 flips that.
  at::Tensor protos = at::zeros({1, 32, 64, 64});
  protos[0][0].slice(1, 0, 32).fill_(10.0);
  protos[0][0].slice(1, 32, 64).fill_(-10.0);
  const LetterboxGeometry g = stretch_geometry(64, 64);
  Predictions left(1);
  left.box(0, 32, 32, 32, 32, 0.9f, 0.0f, {1.0f});
  auto mask = decode_yolo_seg(left.tensor(), protos, g, 64, 64, options());
  ASSERT_TRUE(mask.ok());
  expect_rect(*mask, {16, 16, 32, 48});
  Predictions right(1);
  right.box(0, 32, 32, 32, 32, 0.9f, 0.0f, {-1.0f});
  mask = decode_yolo_seg(right.tensor(), protos, g, 64, 64, options());
  ASSERT_TRUE(mask.ok());
  expect_rect(*mask, {32, 16, 48, 48});
}

TEST(DecodeYoloSegTest, InstancesAreOred) {
  Predictions p(2);
  p.box(0, 12, 12, 8, 8, 0.9f, 0.0f).box(1, 40, 44, 16, 8, 0.8f, 0.0f);
  auto mask =
      decode_yolo_seg(p.tensor(), prototypes(64), stretch_geometry(64, 64), 64, 64, options());
  ASSERT_TRUE(mask.ok());
  int count = 0;
  for (auto v : mask->values) count += v == 255;
  EXPECT_EQ(count, 8 * 8 + 16 * 8);
  EXPECT_EQ(mask->values[12 * 64 + 12], 255);
  EXPECT_EQ(mask->values[44 * 64 + 40], 255);
}

TEST(DecodeYoloSegTest, BadPrototypesAreInternal) {
  Predictions p(1);
  p.box(0, 32, 32, 10, 10, 0.9f, 0.0f);
  auto mask = decode_yolo_seg(p.tensor(), at::zeros({1, 16, 8, 8}), stretch_geometry(64, 64), 64,
                              64, options());
  ASSERT_FALSE(mask.ok());
  EXPECT_EQ(mask.status().code(), ErrorCode::kInternal);
}

TEST(LetterboxGeometryTest, CentresAndRounds) {
  auto g = letterbox_geometry(1920, 1080, 640, 640);
  EXPECT_EQ(g.resized_width, 640);
  EXPECT_EQ(g.resized_height, 360);
  EXPECT_EQ(g.pad_x, 0);
  EXPECT_EQ(g.pad_y, 140);
  g = letterbox_geometry(100, 100, 64, 48);
  EXPECT_EQ(g.resized_width, 48);
  EXPECT_EQ(g.pad_x, 8);
  EXPECT_EQ(g.pad_y, 0);
}

}  // namespace
}  // namespace segmentor
