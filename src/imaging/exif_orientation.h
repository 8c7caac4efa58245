// EXIF orientation: reading the tag (via libexif) and turning a stored image upright.
//
// Thread-safety: stateless functions, callable from any thread.
#pragma once

#include <cstdint>
#include <span>

#include "imaging/image.h"

namespace segmentor {

// The Orientation tag (1-8) from an EXIF block that starts either with "Exif\0\0" (JPEG APP1
// payload) or directly with the TIFF header "II*\0" / "MM\0*" (PNG eXIf, most WebP EXIF chunks).
// Returns 1 when the block is empty, unparsable, has no tag, or the value is out of range: a
// broken EXIF block must not make an otherwise good image fail.
int exif_orientation(std::span<const std::uint8_t> exif);

// Returns `stored` transformed so that orientation 1 holds (width and height swap for 5-8).
// Orientation 1 or an out-of-range value returns the image unchanged without copying.
RgbImage apply_exif_orientation(RgbImage stored, int orientation);

}  // namespace segmentor
