#include "imaging/exif_orientation.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "imaging/decode.h"
#include "support/image_fixtures.h"

namespace segmentor {
namespace {

// Note [Orientation expectations]
// The stored image is 64x32 with a red 16x16 block at its first-row/first-column corner and a
// green one at its first-row/last-column corner. The EXIF spec says, per orientation, which
// visual side the stored 0th row and 0th column are on; from that, where both blocks must appear
// once the image is upright. The table below is derived from the spec, not from the code.
enum Corner { kTopLeft, kTopRight, kBottomLeft, kBottomRight };

struct Expectation {
  int orientation;
  Corner red;
  Corner green;
};

constexpr Expectation kExpectations[] = {
    {1, kTopLeft, kTopRight},       {2, kTopRight, kTopLeft},   {3, kBottomRight, kBottomLeft},
    {4, kBottomLeft, kBottomRight}, {5, kTopLeft, kBottomLeft}, {6, kTopRight, kBottomRight},
    {7, kBottomRight, kTopRight},   {8, kBottomLeft, kTopLeft},
};

constexpr int kStoredWidth = 64;
constexpr int kStoredHeight = 32;
constexpr int kBlock = 16;

RgbImage stored_image() {
  RgbImage image = fixtures::solid_image(kStoredWidth, kStoredHeight, 0, 0, 0);
  fixtures::fill_rect(image, 0, 0, kBlock, kBlock, 255, 0, 0);
  fixtures::fill_rect(image, kStoredWidth - kBlock, 0, kStoredWidth, kBlock, 0, 255, 0);
  return image;
}

std::array<int, 2> center_of(Corner corner, int width, int height) {
  const int left = kBlock / 2;
  const int right = width - kBlock / 2;
  const int top = kBlock / 2;
  const int bottom = height - kBlock / 2;
  switch (corner) {
    case kTopLeft:
      return {left, top};
    case kTopRight:
      return {right, top};
    case kBottomLeft:
      return {left, bottom};
    case kBottomRight:
      return {right, bottom};
  }
  return {0, 0};
}

void expect_upright(const Result<RgbImage>& decoded, const Expectation& e, int tolerance) {
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  const bool swapped = e.orientation >= 5;
  ASSERT_EQ(decoded->width, swapped ? kStoredHeight : kStoredWidth);
  ASSERT_EQ(decoded->height, swapped ? kStoredWidth : kStoredHeight);
  for (Corner corner : {kTopLeft, kTopRight, kBottomLeft, kBottomRight}) {
    const auto [x, y] = center_of(corner, decoded->width, decoded->height);
    const auto px = fixtures::pixel_at(*decoded, x, y);
    std::array<int, 3> want = {0, 0, 0};
    if (corner == e.red) want = {255, 0, 0};
    if (corner == e.green) want = {0, 255, 0};
    for (std::size_t c = 0; c < 3; ++c) {
      EXPECT_NEAR(px[c], want[c], tolerance)
          << "orientation " << e.orientation << " corner " << corner << " channel " << c;
    }
  }
}

class OrientationTest : public ::testing::TestWithParam<Expectation> {};

TEST_P(OrientationTest, Jpeg) {
  const auto bytes = fixtures::jpeg_bytes(stored_image(), 95, GetParam().orientation);
  expect_upright(decode_image_bytes(bytes, "o.jpg"), GetParam(), 20);
}

TEST_P(OrientationTest, PngExifChunk) {
  fixtures::PngFixtureOptions options;
  options.exif_orientation = GetParam().orientation;
  expect_upright(decode_image_bytes(fixtures::png_bytes(stored_image(), options), "o.png"),
                 GetParam(), 0);
}

TEST_P(OrientationTest, WebpExifChunk) {
  const auto bytes = fixtures::webp_bytes(stored_image(), true, 90, GetParam().orientation);
  expect_upright(decode_image_bytes(bytes, "o.webp"), GetParam(), 0);
}

INSTANTIATE_TEST_SUITE_P(AllEight, OrientationTest, ::testing::ValuesIn(kExpectations),
                         [](const ::testing::TestParamInfo<Expectation>& param_info) {
                           return "Orientation" + std::to_string(param_info.param.orientation);
                         });

TEST(ExifOrientationTest, ReadsBothByteOrdersWithAndWithoutHeader) {
  for (int o = 1; o <= 8; ++o) {
    EXPECT_EQ(exif_orientation(fixtures::exif_orientation_block(o, false, true)), o);
    EXPECT_EQ(exif_orientation(fixtures::exif_orientation_block(o, true, true)), o);
    EXPECT_EQ(exif_orientation(fixtures::exif_orientation_block(o, false, false)), o);
    EXPECT_EQ(exif_orientation(fixtures::exif_orientation_block(o, true, false)), o);
  }
}

TEST(ExifOrientationTest, BrokenOrOutOfRangeMeansUpright) {
  EXPECT_EQ(exif_orientation({}), 1);
  EXPECT_EQ(exif_orientation(fixtures::exif_orientation_block(0)), 1);
  EXPECT_EQ(exif_orientation(fixtures::exif_orientation_block(9)), 1);
  std::vector<std::uint8_t> garbage = {'E', 'x',  'i',  'f',  0,    0, 'I', 'I', 42,
                                       0,   0xff, 0xff, 0xff, 0x7f, 1, 2,   3};
  EXPECT_EQ(exif_orientation(garbage), 1);
}

TEST(ExifOrientationTest, OrientationOneKeepsTheBuffer) {
  RgbImage image = stored_image();
  const std::uint8_t* data = image.pixels.data();
  const RgbImage same = apply_exif_orientation(std::move(image), 1);
  EXPECT_EQ(same.pixels.data(), data);
}

TEST(ExifOrientationTest, JpegWithCorruptExifStillDecodes) {
  // Orientation 6 in the fixture, then the TIFF byte-order mark is smashed so libexif cannot
  // parse the block: the image must decode as stored rather than fail.
  auto bytes = fixtures::jpeg_bytes(stored_image(), 95, 6);
  const std::string needle = "Exif";
  auto it = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
  ASSERT_NE(it, bytes.end());
  const auto byte_order = static_cast<std::size_t>(it - bytes.begin()) + 6;
  bytes[byte_order] = 'X';
  bytes[byte_order + 1] = 'X';
  expect_upright(decode_image_bytes(bytes, "bad_exif.jpg"), kExpectations[0], 20);
}

}  // namespace
}  // namespace segmentor
