#include "imaging/decode.h"

#include <algorithm>
#include <array>
#include <new>
#include <string>

#include "imaging/codecs.h"
#include "imaging/exif_orientation.h"
#include "imaging/file_io.h"

namespace segmentor {

namespace imaging_internal {

Status check_dimensions(std::int64_t width, std::int64_t height, std::string_view name,
                        std::string_view format, const DecodeOptions& options) {
  if (width <= 0 || height <= 0) {
    return corrupt_data(prefixed(name, std::string(format) + " header has an empty size (" +
                                           std::to_string(width) + "x" + std::to_string(height) +
                                           ")"));
  }
  // Both factors fit in 32 bits in every format we read, so the product cannot overflow.
  if (width * height > options.max_pixels) {
    return too_large(prefixed(name, std::string(format) + " is " + std::to_string(width) + "x" +
                                        std::to_string(height) + " pixels, more than the " +
                                        std::to_string(options.max_pixels) + " allowed"));
  }
  return Status::Ok();
}

}  // namespace imaging_internal

ImageFormat sniff_image_format(std::span<const std::uint8_t> bytes) {
  constexpr std::array<std::uint8_t, 8> kPngMagic = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 3 && bytes[0] == 0xff && bytes[1] == 0xd8 && bytes[2] == 0xff) {
    return ImageFormat::kJpeg;
  }
  if (bytes.size() >= kPngMagic.size() &&
      std::equal(kPngMagic.begin(), kPngMagic.end(), bytes.begin())) {
    return ImageFormat::kPng;
  }
  if (bytes.size() >= 12 && bytes[0] == 'R' && bytes[1] == 'I' && bytes[2] == 'F' &&
      bytes[3] == 'F' && bytes[8] == 'W' && bytes[9] == 'E' && bytes[10] == 'B' &&
      bytes[11] == 'P') {
    return ImageFormat::kWebp;
  }
  return ImageFormat::kUnknown;
}

Result<RgbImage> decode_image_bytes(std::span<const std::uint8_t> bytes,
                                    std::string_view source_name, const DecodeOptions& options) {
  using imaging_internal::prefixed;
  if (options.max_pixels <= 0) {
    return invalid_argument(prefixed(source_name, "DecodeOptions.max_pixels must be positive"));
  }
  if (bytes.empty()) return corrupt_data(prefixed(source_name, "empty file"));

  try {
    Result<imaging_internal::DecodedImage> decoded =
        [&]() -> Result<imaging_internal::DecodedImage> {
      switch (sniff_image_format(bytes)) {
        case ImageFormat::kJpeg:
          return imaging_internal::decode_jpeg(bytes, source_name, options);
        case ImageFormat::kPng:
          return imaging_internal::decode_png(bytes, source_name, options);
        case ImageFormat::kWebp:
          return imaging_internal::decode_webp(bytes, source_name, options);
        case ImageFormat::kUnknown:
          break;
      }
      return invalid_argument(prefixed(source_name, "not a JPEG, PNG or WebP image"));
    }();
    if (!decoded.ok()) return decoded.status();
    const int orientation = exif_orientation(decoded->exif);
    return apply_exif_orientation(std::move(decoded->image), orientation);
  } catch (const std::bad_alloc&) {
    return too_large(prefixed(source_name, "out of host memory while decoding"));
  }
}

Result<RgbImage> decode_image_file(const std::filesystem::path& path,
                                   const DecodeOptions& options) {
  SEGMENTOR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> bytes, read_file_bytes(path, options.read));
  return decode_image_bytes(bytes, path.string(), options);
}

}  // namespace segmentor
