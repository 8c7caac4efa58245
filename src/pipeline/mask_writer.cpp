#include "pipeline/mask_writer.h"

#include <system_error>

#include "imaging/atomic_file.h"
#include "imaging/png_encode.h"

namespace segmentor {

namespace {

Status write_gray(const std::filesystem::path& path, const Mask& mask,
                  const std::filesystem::path& beneath) {
  SEGMENTOR_ASSIGN_OR_RETURN(auto png, encode_gray_png(mask));
  return write_file_atomically(path, png, beneath).with_context(path.string());
}

}  // namespace

Status write_masks(const MaskPaths& paths, const AssetMasks& masks,
                   const std::filesystem::path& beneath) {
  SEGMENTOR_RETURN_IF_ERROR(write_gray(paths.foreground, masks.foreground, beneath));
  if (masks.people_found) {
    SEGMENTOR_RETURN_IF_ERROR(write_gray(paths.people, masks.people, beneath));
  } else {
    std::error_code ec;
    std::filesystem::remove(paths.people, ec);
    if (ec) return io_error(paths.people.string() + ": cannot remove stale mask: " + ec.message());
  }
  return write_gray(paths.product, masks.product, beneath);
}

Status write_cutout(const std::filesystem::path& path, const RgbImage& image, const Mask& product) {
  SEGMENTOR_ASSIGN_OR_RETURN(auto png, encode_rgba_png(image, product));
  return write_file_atomically(path, png).with_context(path.string());
}

}  // namespace segmentor
