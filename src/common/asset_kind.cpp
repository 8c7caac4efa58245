#include "common/asset_kind.h"

#include <string>

namespace segmentor {

std::string_view to_string(AssetKind kind) {
  switch (kind) {
    case AssetKind::kProductImage:
      return "image";
    case AssetKind::kVideoFrame:
      return "video";
  }
  return "unknown";
}

Result<AssetKind> parse_asset_kind(std::string_view text) {
  if (text == "image") return AssetKind::kProductImage;
  if (text == "video") return AssetKind::kVideoFrame;
  return invalid_argument("unknown asset kind '" + std::string(text) + "'");
}

}  // namespace segmentor
