// PNG output for masks and cut-outs, and a strict reader to check written masks.
//
// Written masks follow the contract (docs/CONTRACT.md section 4): 8-bit grayscale, no alpha,
// same size as the source. Encoding favours speed over size because it runs for every frame;
// see Note [Mask PNG compression] in png_encode.cpp.
//
// Thread-safety: stateless functions, callable from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "common/status.h"
#include "imaging/image.h"

namespace segmentor {

// An 8-bit grayscale PNG (no alpha) of `mask`, values written as they are.
// kInvalidArgument when the mask is empty or values.size() != width * height.
Result<std::vector<std::uint8_t>> encode_gray_png(const Mask& mask);

// An 8-bit RGBA PNG: `image`'s colours with `alpha`'s values as the alpha channel (a cut-out).
// kInvalidArgument when the sizes differ or a buffer has the wrong length.
Result<std::vector<std::uint8_t>> encode_rgba_png(const RgbImage& image, const Mask& alpha);

// Reads a PNG back as a Mask. Fails with kInvalidArgument unless it is 8-bit grayscale without
// alpha (no tRNS either); kNotFound/kIo/kCorruptData as for decode_image_file. Values are
// returned as stored (not checked for {0, 255}). Messages start with the path.
Result<Mask> read_mask_png(const std::filesystem::path& path);

}  // namespace segmentor
