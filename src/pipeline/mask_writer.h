// Writes an asset's masks to disk atomically, product mask last.
#pragma once

#include <filesystem>
#include <optional>

#include "common/status.h"
#include "imaging/image.h"
#include "pipeline/mask_paths.h"
#include "pipeline/segmenter.h"

namespace segmentor {

// Writes foreground, then people (only when people were found; a stale people mask from an earlier
// run of the same id is removed), then product. Every file is written atomically, so a reader
// that sees the product mask sees a complete set. Encoding happens on the calling thread.
// With `beneath` (the data root), no symbolic link below it is followed (write_file_atomically).
Status write_masks(const MaskPaths& paths, const AssetMasks& masks,
                   const std::filesystem::path& beneath = {});

// An RGBA PNG of the source with alpha = product mask (`segmentor run --cutout`).
Status write_cutout(const std::filesystem::path& path, const RgbImage& image, const Mask& product);

}  // namespace segmentor
