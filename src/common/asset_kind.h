// The two kinds of asset a job carries, shared by every layer: the engine (which mask folder), the
// wire (which completion topic), the tracker (which counters) and the database (which rows).
#pragma once

#include <string_view>

#include "common/status.h"

namespace segmentor {

// A product image, or one keyframe of a video. Each kind has its own counters, timer and
// completion per job.
enum class AssetKind { kProductImage, kVideoFrame };

// "image" / "video": the spelling on the wire and in the database (CONTRACT §6). The mask
// sub-folders are spelled differently: see asset_subdir (pipeline/mask_paths.h).
std::string_view to_string(AssetKind kind);
Result<AssetKind> parse_asset_kind(std::string_view text);

}  // namespace segmentor
