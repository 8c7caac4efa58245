// Where an asset's three masks live on disk (CONTRACT §4), and the checks that keep untrusted
// ids from naming anything else.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "common/asset_kind.h"
#include "common/status.h"

namespace segmentor {

// "product_images" or "video_frames": the sub-folder under each mask root.
std::string_view asset_subdir(AssetKind kind);

// The mask roots: {data_root}/{rel}/... for each of the three masks.
struct MaskLayout {
  std::filesystem::path data_root;
  std::string foreground_rel = "masks_foreground";
  std::string people_rel = "masks_people";
  std::string product_rel = "masks_product";
};

struct MaskPaths {
  std::filesystem::path foreground;
  std::filesystem::path people;
  std::filesystem::path product;  // the one that goes to the database and into events
};

// The database column that receives the product path is VARCHAR(500): characters (UTF-8 code
// points), not bytes. The one check of it is mask_paths_for's, before any mask is written.
inline constexpr std::size_t kMaxMaskPathLength = 500;

// Ok when `id` is a plain file name: non-empty, at most 255 bytes, no '/', '\\' or NUL, not "."
// or "..", no leading '.', no control characters. Ids come from events and are untrusted.
Status validate_asset_id(std::string_view id);

// {root}/{rel}/{subdir}/{id}.png for the three masks. Fails on a bad id or when the product path
// (absolute) would not fit the database column.
Result<MaskPaths> mask_paths_for(const MaskLayout& layout, AssetKind kind, std::string_view id);

}  // namespace segmentor
