// Internal to segmentor_imaging: the per-format decoders behind decode.h. Not for other
// subsystems; include decode.h instead.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "imaging/decode.h"
#include "imaging/image.h"

namespace segmentor::imaging_internal {

// A decoded image as stored in the file (orientation not yet applied) and its raw EXIF block
// (empty when there is none; may or may not start with "Exif\0\0").
struct DecodedImage {
  RgbImage image;
  std::vector<std::uint8_t> exif;
};

// Each assumes the magic bytes were already checked. Messages are prefixed with `name`.
Result<DecodedImage> decode_jpeg(std::span<const std::uint8_t> bytes, std::string_view name,
                                 const DecodeOptions& options);
Result<DecodedImage> decode_png(std::span<const std::uint8_t> bytes, std::string_view name,
                                const DecodeOptions& options);
Result<DecodedImage> decode_webp(std::span<const std::uint8_t> bytes, std::string_view name,
                                 const DecodeOptions& options);

// "<name>: <what>".
inline std::string prefixed(std::string_view name, std::string_view what) {
  std::string message;
  message.reserve(name.size() + 2 + what.size());
  message.append(name).append(": ").append(what);
  return message;
}

// Status for a header that claims width x height; Ok when it fits options.max_pixels.
Status check_dimensions(std::int64_t width, std::int64_t height, std::string_view name,
                        std::string_view format, const DecodeOptions& options);

}  // namespace segmentor::imaging_internal
