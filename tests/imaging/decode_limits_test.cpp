// Decompression bombs: headers that claim huge sizes are refused before any pixel buffer is
// allocated. This binary replaces operator new to record the largest single request.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "imaging/decode.h"
#include "support/image_fixtures.h"
#include "support/temp_dir.h"

namespace {
std::atomic<std::size_t> g_largest_allocation{0};
}  // namespace

void* operator new(std::size_t size) {
  std::size_t seen = g_largest_allocation.load(std::memory_order_relaxed);
  while (size > seen && !g_largest_allocation.compare_exchange_weak(seen, size)) {
  }
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
// Out of line so GCC does not pair the inlined free() with operator new and warn.
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t /*size*/) noexcept { std::free(p); }

namespace segmentor {
namespace {

constexpr std::size_t kSmallAllocation = 16u << 20;  // far below any claimed pixel buffer

TEST(DecodeLimitsTest, JpegClaiming65000SquaredIsTooLargeWithoutAllocating) {
  fixtures::TempDir dir;
  const auto path = dir / "bomb.jpg";
  ASSERT_TRUE(fixtures::write_bytes(path, fixtures::jpeg_claiming_size(65000, 65000)).ok());
  g_largest_allocation = 0;
  const Result<RgbImage> image = decode_image_file(path);
  const std::size_t largest = g_largest_allocation.load();
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), ErrorCode::kTooLarge) << image.status().to_string();
  EXPECT_EQ(image.status().message().rfind(path.string() + ": ", 0), 0u);
  EXPECT_NE(image.status().message().find("65000x65000"), std::string::npos);
  EXPECT_LT(largest, kSmallAllocation);
}

TEST(DecodeLimitsTest, PngClaiming100000SquaredIsTooLargeWithoutAllocating) {
  fixtures::TempDir dir;
  const auto path = dir / "bomb.png";
  ASSERT_TRUE(fixtures::write_bytes(path, fixtures::png_claiming_size(100000, 100000)).ok());
  g_largest_allocation = 0;
  const Result<RgbImage> image = decode_image_file(path);
  const std::size_t largest = g_largest_allocation.load();
  ASSERT_FALSE(image.ok());
  EXPECT_EQ(image.status().code(), ErrorCode::kTooLarge) << image.status().to_string();
  EXPECT_NE(image.status().message().find("100000x100000"), std::string::npos);
  EXPECT_LT(largest, kSmallAllocation);
}

TEST(DecodeLimitsTest, LimitIsInclusive) {
  const auto png = fixtures::png_bytes(fixtures::solid_image(10, 10, 1, 2, 3));
  DecodeOptions options;
  options.max_pixels = 100;
  EXPECT_TRUE(decode_image_bytes(png, "exact.png", options).ok());
  options.max_pixels = 99;
  EXPECT_EQ(decode_image_bytes(png, "exact.png", options).status().code(), ErrorCode::kTooLarge);
}

TEST(DecodeLimitsTest, EachFormatHonoursMaxPixels) {
  const RgbImage image = fixtures::solid_image(20, 20, 9, 9, 9);
  DecodeOptions options;
  options.max_pixels = 399;
  for (const auto& [name, bytes] :
       {std::pair{"a.jpg", fixtures::jpeg_bytes(image)},
        std::pair{"a.png", fixtures::png_bytes(image)},
        std::pair{"a.webp", fixtures::webp_bytes(image)},
        std::pair{"anim.webp", fixtures::animated_webp_bytes({image, image})}}) {
    const Result<RgbImage> decoded = decode_image_bytes(bytes, name, options);
    ASSERT_FALSE(decoded.ok()) << name;
    EXPECT_EQ(decoded.status().code(), ErrorCode::kTooLarge) << name;
    EXPECT_EQ(decoded.status().message().rfind(std::string(name) + ": ", 0), 0u);
  }
}

}  // namespace
}  // namespace segmentor
