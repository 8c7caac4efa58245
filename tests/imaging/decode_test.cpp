#include "imaging/decode.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <string>

#include "support/image_fixtures.h"
#include "support/temp_dir.h"

namespace segmentor {
namespace {

using fixtures::pixel_at;

// Image with a red rectangle on black, plus a blue one, so a transposition or channel swap shows.
RgbImage test_pattern() {
  RgbImage image = fixtures::red_rectangle_on_black(64, 48, 8, 8, 32, 24);
  fixtures::fill_rect(image, 40, 30, 60, 44, 0, 0, 255);
  return image;
}

void expect_near(const RgbImage& actual, int x, int y, std::array<int, 3> want, int tolerance) {
  const auto got = pixel_at(actual, x, y);
  for (int c = 0; c < 3; ++c) {
    EXPECT_NEAR(got[static_cast<std::size_t>(c)], want[static_cast<std::size_t>(c)], tolerance)
        << "pixel (" << x << "," << y << ") channel " << c;
  }
}

void expect_pattern(const Result<RgbImage>& decoded, int tolerance) {
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  ASSERT_EQ(decoded->width, 64);
  ASSERT_EQ(decoded->height, 48);
  ASSERT_EQ(decoded->pixels.size(), 64u * 48u * 3u);
  expect_near(*decoded, 20, 16, {255, 0, 0}, tolerance);
  expect_near(*decoded, 50, 37, {0, 0, 255}, tolerance);
  expect_near(*decoded, 2, 2, {0, 0, 0}, tolerance);
  expect_near(*decoded, 62, 2, {0, 0, 0}, tolerance);
}

bool starts_with(const std::string& text, const std::string& prefix) {
  return text.rfind(prefix, 0) == 0;
}

TEST(DecodeTest, JpegRoundTrip) {
  fixtures::TempDir dir;
  ASSERT_TRUE(fixtures::write_jpeg(dir / "a.jpg", test_pattern(), 95).ok());
  expect_pattern(decode_image_file(dir / "a.jpg"), 12);
}

TEST(DecodeTest, GrayscaleJpegBecomesRgb) {
  RgbImage image = fixtures::solid_image(32, 32, 40, 40, 40);
  fixtures::fill_rect(image, 0, 0, 16, 32, 200, 200, 200);
  const auto bytes = fixtures::jpeg_bytes(image, 95, 0, fixtures::JpegColor::kGray);
  const Result<RgbImage> decoded = decode_image_bytes(bytes, "gray.jpg");
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  expect_near(*decoded, 4, 16, {200, 200, 200}, 4);
  expect_near(*decoded, 28, 16, {40, 40, 40}, 4);
}

TEST(DecodeTest, AdobeCmykJpegBecomesRgb) {
  const auto bytes = fixtures::jpeg_bytes(test_pattern(), 95, 0, fixtures::JpegColor::kCmyk);
  expect_pattern(decode_image_bytes(bytes, "cmyk.jpg"), 16);
}

TEST(DecodeTest, PngRgbRoundTripIsExact) {
  const RgbImage image = test_pattern();
  const Result<RgbImage> decoded = decode_image_bytes(fixtures::png_bytes(image), "a.png");
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  EXPECT_EQ(decoded->pixels, image.pixels);
}

// Every PNG layout decodes to the same 8-bit RGB.
struct PngCase {
  const char* name;
  fixtures::PngColor color;
  bool sixteen_bit;
  bool interlaced;
  bool with_alpha;
};

class PngLayoutTest : public ::testing::TestWithParam<PngCase> {};

TEST_P(PngLayoutTest, DecodesToExactRgb) {
  const PngCase& c = GetParam();
  const bool gray =
      c.color == fixtures::PngColor::kGray || c.color == fixtures::PngColor::kGrayAlpha;
  // Gray layouts store the red channel, so use an image whose channels are equal.
  RgbImage image = gray ? fixtures::solid_image(37, 23, 10, 10, 10) : test_pattern();
  if (gray) fixtures::fill_rect(image, 5, 5, 20, 15, 230, 230, 230);
  // Alpha zero over part of the image: decoding must keep the colour, not blend it away.
  const Mask alpha =
      fixtures::rectangle_mask(image.width, image.height, 0, 0, image.width / 2, image.height);
  fixtures::PngFixtureOptions options;
  options.color = c.color;
  options.sixteen_bit = c.sixteen_bit;
  options.interlaced = c.interlaced;
  options.alpha = c.with_alpha ? &alpha : nullptr;
  const auto bytes = fixtures::png_bytes(image, options);
  ASSERT_FALSE(bytes.empty());
  const Result<RgbImage> decoded = decode_image_bytes(bytes, c.name);
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  EXPECT_EQ(decoded->width, image.width);
  EXPECT_EQ(decoded->height, image.height);
  EXPECT_EQ(decoded->pixels, image.pixels);
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, PngLayoutTest,
    ::testing::Values(PngCase{"rgb16", fixtures::PngColor::kRgb, true, false, false},
                      PngCase{"rgba", fixtures::PngColor::kRgba, false, false, true},
                      PngCase{"rgba16", fixtures::PngColor::kRgba, true, false, true},
                      PngCase{"gray", fixtures::PngColor::kGray, false, false, false},
                      PngCase{"gray16", fixtures::PngColor::kGray, true, false, false},
                      PngCase{"gray_alpha", fixtures::PngColor::kGrayAlpha, false, false, true},
                      PngCase{"palette", fixtures::PngColor::kPalette, false, false, false},
                      PngCase{"palette_trns", fixtures::PngColor::kPalette, false, false, true},
                      PngCase{"interlaced", fixtures::PngColor::kRgb, false, true, false},
                      PngCase{"interlaced_palette", fixtures::PngColor::kPalette, false, true,
                              true}),
    [](const ::testing::TestParamInfo<PngCase>& param_info) {
      return std::string(param_info.param.name);
    });

TEST(DecodeTest, LosslessWebpIsExact) {
  const RgbImage image = test_pattern();
  const Result<RgbImage> decoded = decode_image_bytes(fixtures::webp_bytes(image, true), "a.webp");
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  EXPECT_EQ(decoded->pixels, image.pixels);
}

TEST(DecodeTest, LossyWebpIsClose) {
  expect_pattern(decode_image_bytes(fixtures::webp_bytes(test_pattern(), false, 95), "a.webp"), 24);
}

TEST(DecodeTest, AnimatedWebpGivesFirstFrame) {
  const RgbImage first = test_pattern();
  const RgbImage second = fixtures::solid_image(64, 48, 0, 255, 0);
  const auto bytes = fixtures::animated_webp_bytes({first, second});
  ASSERT_FALSE(bytes.empty());
  const Result<RgbImage> decoded = decode_image_bytes(bytes, "anim.webp");
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  EXPECT_EQ(decoded->pixels, first.pixels);
}

TEST(DecodeTest, FormatComesFromBytesNotExtension) {
  fixtures::TempDir dir;
  const RgbImage image = test_pattern();
  ASSERT_TRUE(fixtures::write_png(dir / "really_png.jpg", image).ok());
  ASSERT_TRUE(fixtures::write_webp(dir / "really_webp.png", image).ok());
  ASSERT_TRUE(fixtures::write_jpeg(dir / "really_jpeg", image).ok());
  const Result<RgbImage> png = decode_image_file(dir / "really_png.jpg");
  ASSERT_TRUE(png.ok()) << png.status().to_string();
  EXPECT_EQ(png->pixels, image.pixels);
  const Result<RgbImage> webp = decode_image_file(dir / "really_webp.png");
  ASSERT_TRUE(webp.ok()) << webp.status().to_string();
  EXPECT_EQ(webp->pixels, image.pixels);
  expect_pattern(decode_image_file(dir / "really_jpeg"), 12);
}

TEST(DecodeTest, SniffRecognisesMagicOnly) {
  EXPECT_EQ(sniff_image_format(fixtures::jpeg_bytes(test_pattern())), ImageFormat::kJpeg);
  EXPECT_EQ(sniff_image_format(fixtures::png_bytes(test_pattern())), ImageFormat::kPng);
  EXPECT_EQ(sniff_image_format(fixtures::webp_bytes(test_pattern())), ImageFormat::kWebp);
  const std::vector<std::uint8_t> riff_wave = {'R', 'I', 'F', 'F', 0, 0, 0, 0, 'W', 'A', 'V', 'E'};
  EXPECT_EQ(sniff_image_format(riff_wave), ImageFormat::kUnknown);
  const std::vector<std::uint8_t> two_bytes = {0xff, 0xd8};
  EXPECT_EQ(sniff_image_format(two_bytes), ImageFormat::kUnknown);
}

// ---- Errors ------------------------------------------------------------------------------------

void expect_error(const Result<RgbImage>& result, ErrorCode code, const std::string& name,
                  const std::string& fragment) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), code) << result.status().to_string();
  EXPECT_TRUE(starts_with(result.status().message(), name + ": ")) << result.status().message();
  EXPECT_NE(result.status().message().find(fragment), std::string::npos)
      << result.status().message();
}

TEST(DecodeErrorTest, MissingFileIsNotFound) {
  fixtures::TempDir dir;
  const auto path = dir / "photos" / "missing.jpg";
  expect_error(decode_image_file(path), ErrorCode::kNotFound, path.string(), "no such file");
}

TEST(DecodeErrorTest, DirectoryIsNotAnImage) {
  fixtures::TempDir dir;
  expect_error(decode_image_file(dir.path()), ErrorCode::kInvalidArgument, dir.path().string(),
               "not a regular file");
}

// A FIFO with no writer: opening it blocking would wait forever (issue 11, item 4).
TEST(DecodeErrorTest, FifoIsRefusedWithoutBlocking) {
  fixtures::TempDir dir;
  const auto path = dir / "pipe.jpg";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  // Only the Status crosses the thread (GCC 12 warns falsely on a future of Result<RgbImage>).
  auto decoded =
      std::async(std::launch::async, [&] { return decode_image_file(path).status(); });
  if (decoded.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    // Unblock the reader so the test can end, then fail.
    const int writer = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
    if (writer >= 0) ::close(writer);
    FAIL() << "decoding a FIFO blocked";
  }
  const Status status = decoded.get();
  EXPECT_EQ(status.code(), ErrorCode::kInvalidArgument) << status.to_string();
  EXPECT_NE(status.message().find("not a regular file"), std::string::npos) << status.to_string();
}

TEST(DecodeErrorTest, SymlinkRefusedWhenNotFollowing) {
  fixtures::TempDir dir;
  const auto target = dir / "real.jpg";
  ASSERT_TRUE(fixtures::write_jpeg(target, test_pattern()).ok());
  const auto link = dir / "link.jpg";
  std::filesystem::create_symlink(target, link);
  EXPECT_TRUE(decode_image_file(link).ok());
  DecodeOptions options;
  options.read.follow_symlinks = false;
  expect_error(decode_image_file(link, options), ErrorCode::kInvalidArgument, link.string(),
               "symbolic link");
}

TEST(DecodeErrorTest, FileOverTheByteCapIsTooLargeBeforeReading) {
  fixtures::TempDir dir;
  const auto path = dir / "big.jpg";
  ASSERT_TRUE(fixtures::write_jpeg(path, test_pattern()).ok());
  DecodeOptions options;
  options.read.max_bytes = 16;
  expect_error(decode_image_file(path, options), ErrorCode::kTooLarge, path.string(), "accepted");
}

TEST(DecodeErrorTest, UnreadableFileIsIoError) {
  if (::geteuid() == 0) GTEST_SKIP() << "root reads files whatever their mode";
  fixtures::TempDir dir;
  const auto path = dir / "secret.jpg";
  ASSERT_TRUE(fixtures::write_jpeg(path, test_pattern()).ok());
  ASSERT_EQ(::chmod(path.c_str(), 0), 0);
  expect_error(decode_image_file(path), ErrorCode::kIo, path.string(), "cannot open");
}

TEST(DecodeErrorTest, RandomBytesAreNotAnImage) {
  fixtures::TempDir dir;
  const auto path = dir / "garbage.jpg";
  ASSERT_TRUE(fixtures::write_random_bytes(path, 4096, 7).ok());
  expect_error(decode_image_file(path), ErrorCode::kInvalidArgument, path.string(),
               "not a JPEG, PNG or WebP image");
}

TEST(DecodeErrorTest, EmptyFileIsCorrupt) {
  fixtures::TempDir dir;
  const auto path = dir / "empty.png";
  {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
  }
  expect_error(decode_image_file(path), ErrorCode::kCorruptData, path.string(), "empty");
}

TEST(DecodeErrorTest, TruncatedJpegIsCorruptNotGrayFilled) {
  fixtures::TempDir dir;
  const auto full = dir / "full.jpg";
  ASSERT_TRUE(fixtures::write_jpeg(full, test_pattern(), 95).ok());
  const auto size = std::filesystem::file_size(full);
  const auto cut = dir / "photos" / "a.jpg";
  ASSERT_TRUE(fixtures::write_truncated_copy(full, cut, size / 2).ok());
  expect_error(decode_image_file(cut), ErrorCode::kCorruptData, cut.string(),
               "truncated JPEG (premature end of data)");
}

TEST(DecodeErrorTest, JpegMissingOnlyItsEndMarkerIsTruncated) {
  auto bytes = fixtures::jpeg_bytes(test_pattern(), 95);
  ASSERT_EQ(bytes[bytes.size() - 2], 0xff);
  ASSERT_EQ(bytes[bytes.size() - 1], 0xd9);
  bytes.resize(bytes.size() - 2);
  expect_error(decode_image_bytes(bytes, "no_eoi.jpg"), ErrorCode::kCorruptData, "no_eoi.jpg",
               "truncated JPEG");
}

TEST(DecodeErrorTest, JpegMagicFollowedByGarbageIsCorrupt) {
  std::vector<std::uint8_t> bytes = {0xff, 0xd8, 0xff, 0xe0};
  for (int i = 0; i < 500; ++i) bytes.push_back(static_cast<std::uint8_t>(i * 37 + 11));
  const Result<RgbImage> result = decode_image_bytes(bytes, "fake.jpg");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), ErrorCode::kCorruptData) << result.status().to_string();
  EXPECT_TRUE(starts_with(result.status().message(), "fake.jpg: "));
}

TEST(DecodeErrorTest, TruncatedPngIsCorrupt) {
  fixtures::TempDir dir;
  const auto full = dir / "full.png";
  ASSERT_TRUE(fixtures::write_png(full, test_pattern()).ok());
  const auto cut = dir / "cut.png";
  ASSERT_TRUE(fixtures::write_truncated_copy(full, cut, std::filesystem::file_size(full) / 2).ok());
  expect_error(decode_image_file(cut), ErrorCode::kCorruptData, cut.string(), "truncated PNG");
}

TEST(DecodeErrorTest, PngWithBadCrcInHeaderIsCorrupt) {
  auto bytes = fixtures::png_bytes(test_pattern());
  bytes[30] ^= 0xff;  // inside IHDR's CRC
  expect_error(decode_image_bytes(bytes, "crc.png"), ErrorCode::kCorruptData, "crc.png",
               "corrupt PNG");
}

TEST(DecodeErrorTest, TruncatedWebpIsCorrupt) {
  fixtures::TempDir dir;
  const auto full = dir / "full.webp";
  ASSERT_TRUE(fixtures::write_webp(full, test_pattern(), false).ok());
  const auto cut = dir / "cut.webp";
  ASSERT_TRUE(fixtures::write_truncated_copy(full, cut, std::filesystem::file_size(full) / 2).ok());
  expect_error(decode_image_file(cut), ErrorCode::kCorruptData, cut.string(), "WebP");
}

TEST(DecodeErrorTest, NonPositiveLimitIsRejected) {
  DecodeOptions options;
  options.max_pixels = 0;
  expect_error(decode_image_bytes(fixtures::png_bytes(test_pattern()), "a.png", options),
               ErrorCode::kInvalidArgument, "a.png", "max_pixels");
}

}  // namespace
}  // namespace segmentor
