// Test fixtures: small images and image files for tests in every folder.
//
// Typical use in an end-to-end test:
//   auto image = fixtures::red_rectangle_on_black(64, 48, 16, 8, 40, 32);
//   ASSERT_TRUE(fixtures::write_jpeg(dir / "a.jpg", image).ok());
//   ASSERT_TRUE(fixtures::write_truncated_copy(dir / "a.jpg", dir / "cut.jpg", 200).ok());
//
// Encoders use libjpeg/libpng/libwebp directly (not segmentor_imaging). Byte-returning functions
// return an empty vector when given bad arguments (wrong buffer sizes, too many palette colours);
// the write_* functions turn that into a non-ok Status. Not thread-safe only in the sense that two
// threads must not write the same path at once.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "common/status.h"
#include "imaging/image.h"

namespace segmentor::fixtures {

// ---- Images in memory -------------------------------------------------------------------------

RgbImage solid_image(int width, int height, std::uint8_t r, std::uint8_t g, std::uint8_t b);

// Black image with pure red (255,0,0) in columns [left, right) and rows [top, bottom).
RgbImage red_rectangle_on_black(int width, int height, int left, int top, int right, int bottom);

// Paints [left, right) x [top, bottom) (clipped to the image) with one colour.
void fill_rect(RgbImage& image, int left, int top, int right, int bottom, std::uint8_t r,
               std::uint8_t g, std::uint8_t b);

// 0/255 mask with 255 in [left, right) x [top, bottom).
Mask rectangle_mask(int width, int height, int left, int top, int right, int bottom);

// {r, g, b} of pixel (x, y).
std::array<std::uint8_t, 3> pixel_at(const RgbImage& image, int x, int y);

// ---- Encoded bytes ----------------------------------------------------------------------------

// An EXIF block holding only the Orientation tag: "Exif\0\0" (when with_exif_header) followed by
// a TIFF header in little- or big-endian order and IFD0 with one SHORT entry.
std::vector<std::uint8_t> exif_orientation_block(int orientation, bool big_endian = false,
                                                 bool with_exif_header = true);

enum class JpegColor {
  kRgb,   // ordinary YCbCr JPEG
  kGray,  // one channel: the image's red channel
  kCmyk,  // Adobe (inverted) CMYK, as Photoshop writes; decodes back to about the same RGB
};

// A baseline JPEG. exif_orientation 1-8 adds an APP1 EXIF block with that tag; 0 adds none.
std::vector<std::uint8_t> jpeg_bytes(const RgbImage& image, int quality = 95,
                                     int exif_orientation = 0, JpegColor color = JpegColor::kRgb);

enum class PngColor {
  kRgb,        // 8 or 16 bit
  kRgba,       // alpha from PngFixtureOptions::alpha
  kGray,       // the image's red channel
  kGrayAlpha,  // red channel + alpha
  kPalette,    // colour table of the image's distinct colours (at most 256); tRNS from alpha
};

struct PngFixtureOptions {
  PngColor color = PngColor::kRgb;
  bool sixteen_bit = false;     // kRgb/kRgba/kGray/kGrayAlpha: 16-bit samples, value v as v*257
  bool interlaced = false;      // Adam7
  int exif_orientation = 0;     // 1-8: an eXIf chunk (before IDAT) with that tag
  const Mask* alpha = nullptr;  // required for kRgba and kGrayAlpha; optional tRNS for kPalette
};

std::vector<std::uint8_t> png_bytes(const RgbImage& image, const PngFixtureOptions& options = {});

// Lossless WebP keeps pixels exact; lossy uses `quality`. exif_orientation 1-8 wraps the image in
// the extended (VP8X) format with an EXIF chunk (bare TIFF, no "Exif\0\0").
std::vector<std::uint8_t> webp_bytes(const RgbImage& image, bool lossless = true, int quality = 90,
                                     int exif_orientation = 0);

// An animated WebP (VP8X + ANIM + one ANMF per frame, each frame lossless and full-canvas).
// All frames must have the same size.
std::vector<std::uint8_t> animated_webp_bytes(const std::vector<RgbImage>& frames);

// Decompression-bomb fixtures: a valid small file whose header claims width x height.
std::vector<std::uint8_t> jpeg_claiming_size(int width, int height);  // at most 65535 each
std::vector<std::uint8_t> png_claiming_size(std::uint32_t width, std::uint32_t height);

// ---- Files ------------------------------------------------------------------------------------

// Writes bytes (creating parent directories). kIo on failure, kInvalidArgument if bytes is empty
// because an encoder above rejected its input.
Status write_bytes(const std::filesystem::path& path, std::span<const std::uint8_t> bytes);

Status write_jpeg(const std::filesystem::path& path, const RgbImage& image, int quality = 95,
                  int exif_orientation = 0);
Status write_png(const std::filesystem::path& path, const RgbImage& image,
                 const PngFixtureOptions& options = {});
Status write_png_with_alpha(const std::filesystem::path& path, const RgbImage& image,
                            const Mask& alpha);
Status write_webp(const std::filesystem::path& path, const RgbImage& image, bool lossless = true,
                  int exif_orientation = 0);

// Copies the first keep_bytes bytes of `source` to `target` (kInvalidArgument if the source is
// not longer than that, so the copy is really truncated).
Status write_truncated_copy(const std::filesystem::path& source,
                            const std::filesystem::path& target, std::size_t keep_bytes);

// `count` pseudo-random bytes from `seed` (deterministic); never starts with an image magic.
Status write_random_bytes(const std::filesystem::path& path, std::size_t count,
                          std::uint32_t seed = 1);

}  // namespace segmentor::fixtures
