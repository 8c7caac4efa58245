// Image decoding for everything the worker reads: product photos and video keyframes in JPEG,
// PNG or WebP, returned as upright 8-bit RGB.
//
// The format is sniffed from the first bytes, never from the extension. EXIF orientation 1-8
// (JPEG APP1, PNG eXIf, WebP EXIF chunk) is applied, so callers always get the image as a person
// would see it. Alpha is dropped. Every error message starts with the source name.
//
// Thread-safety: the functions keep no state and may be called from any number of threads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>

#include "common/status.h"
#include "imaging/file_io.h"
#include "imaging/image.h"

namespace segmentor {

struct DecodeOptions {
  // Largest width * height accepted, checked against the file header before any pixel buffer is
  // allocated (decompression bombs). 100 M pixels is ~300 MB of RGB. Must be positive.
  std::int64_t max_pixels = 100'000'000;
  // How decode_image_file opens the file (size cap, links).
  ReadOptions read;
};

// Reads and decodes `path`. Errors (message "<path>: ..."):
//   kNotFound        the file does not exist
//   kIo              it exists but cannot be read (permissions, I/O error)
//   kInvalidArgument not a JPEG, PNG or WebP image; not a regular file (a directory, a FIFO);
//                    a symbolic link when options.read.follow_symlinks is false
//   kCorruptData     empty, truncated or otherwise undecodable
//   kTooLarge        the header claims more than options.max_pixels pixels, the file is larger
//                    than options.read.max_bytes, or its buffers could not be allocated (host
//                    memory: the same file would not fit on the next try either)
Result<RgbImage> decode_image_file(const std::filesystem::path& path,
                                   const DecodeOptions& options = {});

// Decodes an in-memory file; `source_name` only prefixes error messages. Same errors as above
// except kNotFound and kIo.
//
// Animated WebP: the first frame, composited on the canvas, is returned (see
// Note [Animated WebP] in webp_decode.cpp).
Result<RgbImage> decode_image_bytes(std::span<const std::uint8_t> bytes,
                                    std::string_view source_name,
                                    const DecodeOptions& options = {});

enum class ImageFormat { kUnknown, kJpeg, kPng, kWebp };

// The format the magic bytes announce; kUnknown for anything else (including too few bytes).
ImageFormat sniff_image_format(std::span<const std::uint8_t> bytes);

}  // namespace segmentor
