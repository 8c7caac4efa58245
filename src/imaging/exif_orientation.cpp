#include "imaging/exif_orientation.h"

#include <libexif/exif-data.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <vector>

namespace segmentor {
namespace {

constexpr std::uint8_t kExifHeader[] = {'E', 'x', 'i', 'f', 0, 0};

// Owns an ExifData.
struct ExifDataDeleter {
  void operator()(ExifData* data) const { exif_data_unref(data); }
};

}  // namespace

int exif_orientation(std::span<const std::uint8_t> exif) {
  if (exif.size() < 8) return 1;

  // libexif wants the "Exif\0\0" prefix that JPEG APP1 carries; PNG and WebP store bare TIFF.
  std::vector<std::uint8_t> with_header;
  const bool has_header = std::memcmp(exif.data(), kExifHeader, sizeof(kExifHeader)) == 0;
  if (!has_header) {
    with_header.reserve(sizeof(kExifHeader) + exif.size());
    with_header.insert(with_header.end(), std::begin(kExifHeader), std::end(kExifHeader));
    with_header.insert(with_header.end(), exif.begin(), exif.end());
    exif = with_header;
  }

  std::unique_ptr<ExifData, ExifDataDeleter> data(exif_data_new());
  if (!data) return 1;
  // Read what is there; do not "fix" the block by adding default entries.
  exif_data_unset_option(data.get(), EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
  exif_data_load_data(data.get(), exif.data(), static_cast<unsigned int>(exif.size()));

  ExifEntry* entry = exif_content_get_entry(data->ifd[EXIF_IFD_0], EXIF_TAG_ORIENTATION);
  if (entry == nullptr || entry->format != EXIF_FORMAT_SHORT || entry->components < 1 ||
      entry->data == nullptr || entry->size < 2) {
    return 1;
  }
  const int value = exif_get_short(entry->data, exif_data_get_byte_order(data.get()));
  return (value >= 1 && value <= 8) ? value : 1;
}

// Note [EXIF orientation as strides]
// For orientation N the output pixel (x, y) comes from the stored pixel at
// base + x * dx + y * dy (in pixels), with the output being W x H for 1-4 and H x W for 5-8:
//   2 mirror:        sx = W-1-x, sy = y        3 rotate 180: sx = W-1-x, sy = H-1-y
//   4 flip:          sx = x,     sy = H-1-y    5 transpose:  sx = y,     sy = x
//   6 rotate 90 CW:  sx = y,     sy = H-1-x    7 transverse: sx = W-1-y, sy = H-1-x
//   8 rotate 90 CCW: sx = W-1-y, sy = x
// One loop with three signed strides handles all seven cases with no per-pixel branching.
RgbImage apply_exif_orientation(RgbImage stored, int orientation) {
  if (orientation <= 1 || orientation > 8 || stored.pixel_count() == 0) return stored;

  const std::ptrdiff_t w = stored.width;
  const std::ptrdiff_t h = stored.height;
  std::ptrdiff_t base = 0;
  std::ptrdiff_t dx = 0;
  std::ptrdiff_t dy = 0;
  switch (orientation) {
    case 2:
      base = w - 1;
      dx = -1;
      dy = w;
      break;
    case 3:
      base = (h - 1) * w + w - 1;
      dx = -1;
      dy = -w;
      break;
    case 4:
      base = (h - 1) * w;
      dx = 1;
      dy = -w;
      break;
    case 5:
      base = 0;
      dx = w;
      dy = 1;
      break;
    case 6:
      base = (h - 1) * w;
      dx = -w;
      dy = 1;
      break;
    case 7:
      base = (h - 1) * w + w - 1;
      dx = -w;
      dy = -1;
      break;
    default:
      base = w - 1;
      dx = w;
      dy = -1;
      break;  // 8
  }
  const bool swaps = orientation >= 5;
  RgbImage out;
  out.width = swaps ? stored.height : stored.width;
  out.height = swaps ? stored.width : stored.height;
  out.pixels.resize(stored.pixels.size());

  const std::uint8_t* src = stored.pixels.data();
  std::uint8_t* dst = out.pixels.data();
  for (std::ptrdiff_t y = 0; y < out.height; ++y) {
    std::ptrdiff_t s = base + y * dy;
    for (std::ptrdiff_t x = 0; x < out.width; ++x, s += dx, dst += 3) {
      const std::uint8_t* p = src + s * 3;
      dst[0] = p[0];
      dst[1] = p[1];
      dst[2] = p[2];
    }
  }
  return out;
}

}  // namespace segmentor
