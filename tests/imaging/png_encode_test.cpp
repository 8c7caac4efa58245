#include "imaging/png_encode.h"

#include <gtest/gtest.h>

#include <random>

#include "imaging/atomic_file.h"
#include "imaging/decode.h"
#include "support/image_fixtures.h"
#include "support/temp_dir.h"

namespace segmentor {
namespace {

// IHDR fields straight from the bytes: the contract is about the file, not our reader.
struct Ihdr {
  std::uint32_t width;
  std::uint32_t height;
  int bit_depth;
  int color_type;
};

Ihdr read_ihdr(const std::vector<std::uint8_t>& png) {
  auto be32 = [&](std::size_t at) {
    return (std::uint32_t{png[at]} << 24) | (std::uint32_t{png[at + 1]} << 16) |
           (std::uint32_t{png[at + 2]} << 8) | std::uint32_t{png[at + 3]};
  };
  return {be32(16), be32(20), png[24], png[25]};
}

bool has_chunk(const std::vector<std::uint8_t>& png, const char* type) {
  std::size_t at = 8;
  while (at + 8 <= png.size()) {
    const std::uint32_t length = (std::uint32_t{png[at]} << 24) |
                                 (std::uint32_t{png[at + 1]} << 16) |
                                 (std::uint32_t{png[at + 2]} << 8) | std::uint32_t{png[at + 3]};
    if (std::equal(type, type + 4, png.begin() + static_cast<std::ptrdiff_t>(at + 4))) return true;
    at += 12 + length;
  }
  return false;
}

// A full-HD mask with a few blobs, like a real product mask.
Mask blob_mask(int width, int height) {
  Mask mask = fixtures::rectangle_mask(width, height, width / 4, height / 5, width / 2, height / 2);
  std::mt19937 rng(3);
  for (int i = 0; i < 20; ++i) {
    const int cx = static_cast<int>(rng() % static_cast<unsigned>(width));
    const int cy = static_cast<int>(rng() % static_cast<unsigned>(height));
    const int r = 5 + static_cast<int>(rng() % 60);
    for (int y = std::max(0, cy - r); y < std::min(height, cy + r); ++y) {
      for (int x = std::max(0, cx - r); x < std::min(width, cx + r); ++x) {
        if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r) {
          mask.values[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) +
                      static_cast<std::size_t>(x)] = 255;
        }
      }
    }
  }
  return mask;
}

TEST(PngEncodeTest, GrayMaskRoundTripsExactly) {
  fixtures::TempDir dir;
  const Mask mask = blob_mask(1920, 1080);
  const Result<std::vector<std::uint8_t>> png = encode_gray_png(mask);
  ASSERT_TRUE(png.ok()) << png.status().to_string();
  const Ihdr ihdr = read_ihdr(*png);
  EXPECT_EQ(ihdr.width, 1920u);
  EXPECT_EQ(ihdr.height, 1080u);
  EXPECT_EQ(ihdr.bit_depth, 8);
  EXPECT_EQ(ihdr.color_type, 0);  // grayscale, no alpha
  EXPECT_FALSE(has_chunk(*png, "tRNS"));
  // Binary masks should compress well even at a fast level.
  EXPECT_LT(png->size(), mask.values.size() / 10);

  const auto path = dir / "masks_product" / "product_images" / "img-1.png";
  ASSERT_TRUE(write_file_atomically(path, *png).ok());
  const Result<Mask> back = read_mask_png(path);
  ASSERT_TRUE(back.ok()) << back.status().to_string();
  EXPECT_EQ(back->width, mask.width);
  EXPECT_EQ(back->height, mask.height);
  EXPECT_EQ(back->values, mask.values);
  for (std::uint8_t v : back->values) ASSERT_TRUE(v == 0 || v == 255);
}

TEST(PngEncodeTest, GrayMaskDecodesAsGrayRgb) {
  const Mask mask = fixtures::rectangle_mask(7, 5, 1, 1, 4, 3);
  const Result<std::vector<std::uint8_t>> png = encode_gray_png(mask);
  ASSERT_TRUE(png.ok());
  const Result<RgbImage> rgb = decode_image_bytes(*png, "mask.png");
  ASSERT_TRUE(rgb.ok()) << rgb.status().to_string();
  for (std::size_t i = 0; i < mask.values.size(); ++i) {
    EXPECT_EQ(rgb->pixels[i * 3], mask.values[i]);
    EXPECT_EQ(rgb->pixels[i * 3 + 2], mask.values[i]);
  }
}

TEST(PngEncodeTest, RgbaCutOutKeepsColoursAndAlpha) {
  RgbImage image = fixtures::red_rectangle_on_black(40, 30, 5, 5, 20, 20);
  fixtures::fill_rect(image, 25, 0, 40, 30, 10, 200, 30);
  const Mask alpha = fixtures::rectangle_mask(40, 30, 0, 0, 20, 30);
  const Result<std::vector<std::uint8_t>> png = encode_rgba_png(image, alpha);
  ASSERT_TRUE(png.ok()) << png.status().to_string();
  const Ihdr ihdr = read_ihdr(*png);
  EXPECT_EQ(ihdr.bit_depth, 8);
  EXPECT_EQ(ihdr.color_type, 6);  // RGBA
  // The decoder drops alpha and must give back the colours untouched.
  const Result<RgbImage> rgb = decode_image_bytes(*png, "cut.png");
  ASSERT_TRUE(rgb.ok()) << rgb.status().to_string();
  EXPECT_EQ(rgb->pixels, image.pixels);
  // read_mask_png refuses it: not grayscale.
  fixtures::TempDir dir;
  ASSERT_TRUE(write_file_atomically(dir / "cut.png", *png).ok());
  const Result<Mask> as_mask = read_mask_png(dir / "cut.png");
  ASSERT_FALSE(as_mask.ok());
  EXPECT_EQ(as_mask.status().code(), ErrorCode::kInvalidArgument);
}

TEST(PngEncodeTest, RejectsBadInput) {
  EXPECT_EQ(encode_gray_png(Mask{}).status().code(), ErrorCode::kInvalidArgument);
  Mask short_mask = Mask::zeros(4, 4);
  short_mask.values.resize(3);
  EXPECT_EQ(encode_gray_png(short_mask).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(
      encode_rgba_png(fixtures::solid_image(4, 4, 1, 1, 1), Mask::zeros(4, 5)).status().code(),
      ErrorCode::kInvalidArgument);
}

TEST(ReadMaskPngTest, RefusesAnythingButEightBitGrayWithoutAlpha) {
  fixtures::TempDir dir;
  RgbImage gray = fixtures::solid_image(8, 8, 255, 255, 255);
  const Mask alpha = fixtures::rectangle_mask(8, 8, 0, 0, 4, 8);
  fixtures::PngFixtureOptions options;

  options.color = fixtures::PngColor::kGray;
  ASSERT_TRUE(fixtures::write_png(dir / "gray8.png", gray, options).ok());
  EXPECT_TRUE(read_mask_png(dir / "gray8.png").ok());

  options.sixteen_bit = true;
  ASSERT_TRUE(fixtures::write_png(dir / "gray16.png", gray, options).ok());
  options.sixteen_bit = false;
  options.color = fixtures::PngColor::kGrayAlpha;
  options.alpha = &alpha;
  ASSERT_TRUE(fixtures::write_png(dir / "gray_alpha.png", gray, options).ok());
  ASSERT_TRUE(fixtures::write_png(dir / "rgb.png", gray).ok());
  options.color = fixtures::PngColor::kPalette;
  ASSERT_TRUE(fixtures::write_png(dir / "palette.png", gray, options).ok());
  for (const char* name : {"gray16.png", "gray_alpha.png", "rgb.png", "palette.png"}) {
    const Result<Mask> mask = read_mask_png(dir / name);
    ASSERT_FALSE(mask.ok()) << name;
    EXPECT_EQ(mask.status().code(), ErrorCode::kInvalidArgument) << name;
    EXPECT_EQ(mask.status().message().rfind((dir / name).string() + ": ", 0), 0u);
  }

  ASSERT_TRUE(fixtures::write_jpeg(dir / "photo.png", gray).ok());
  EXPECT_EQ(read_mask_png(dir / "photo.png").status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(read_mask_png(dir / "missing.png").status().code(), ErrorCode::kNotFound);
}

TEST(ReadMaskPngTest, TruncatedMaskIsCorrupt) {
  fixtures::TempDir dir;
  const Result<std::vector<std::uint8_t>> png = encode_gray_png(blob_mask(320, 240));
  ASSERT_TRUE(png.ok());
  std::vector<std::uint8_t> cut(png->begin(),
                                png->begin() + static_cast<std::ptrdiff_t>(png->size() / 2));
  ASSERT_TRUE(fixtures::write_bytes(dir / "cut.png", cut).ok());
  const Result<Mask> mask = read_mask_png(dir / "cut.png");
  ASSERT_FALSE(mask.ok());
  EXPECT_EQ(mask.status().code(), ErrorCode::kCorruptData) << mask.status().to_string();
}

}  // namespace
}  // namespace segmentor
