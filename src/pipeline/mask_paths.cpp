#include "pipeline/mask_paths.h"

#include <string>

#include "common/text.h"

namespace segmentor {

std::string_view asset_subdir(AssetKind kind) {
  return kind == AssetKind::kProductImage ? "product_images" : "video_frames";
}

Status validate_asset_id(std::string_view id) {
  constexpr std::size_t kMaxFileNameBytes = 255 - 4;  // room for ".png"
  auto bad = [&](std::string_view why) {
    return invalid_argument("asset id '" + std::string(id.substr(0, 80)) + "' " + std::string(why));
  };
  if (id.empty()) return invalid_argument("asset id is empty");
  if (id.size() > kMaxFileNameBytes) return bad("is longer than 251 bytes");
  if (id == "." || id == "..") return bad("is not a file name");
  if (id.front() == '.') return bad("starts with '.'");
  for (char c : id) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '/' || c == '\\') return bad("contains a path separator");
    if (u < 0x20 || u == 0x7f) return bad("contains a control character");
  }
  return Status::Ok();
}

Result<MaskPaths> mask_paths_for(const MaskLayout& layout, AssetKind kind, std::string_view id) {
  SEGMENTOR_RETURN_IF_ERROR(validate_asset_id(id));
  const std::string file = std::string(id) + ".png";
  const std::filesystem::path root = std::filesystem::absolute(layout.data_root);
  const std::string_view sub = asset_subdir(kind);
  MaskPaths paths{
      (root / layout.foreground_rel / sub / file).lexically_normal(),
      (root / layout.people_rel / sub / file).lexically_normal(),
      (root / layout.product_rel / sub / file).lexically_normal(),
  };
  if (const std::size_t length = utf8_length(paths.product.string()); length > kMaxMaskPathLength) {
    return too_large("mask path for '" + std::string(id) + "' is " + std::to_string(length) +
                     " characters; the database column holds " +
                     std::to_string(kMaxMaskPathLength));
  }
  return paths;
}

}  // namespace segmentor
