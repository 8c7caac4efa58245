#include "pipeline/mask_writer.h"

#include <cstdint>
#include <system_error>
#include <vector>

#include "common/stage_times.h"
#include "imaging/atomic_file.h"
#include "imaging/png_encode.h"

namespace segmentor {

namespace {

// Encoding and writing are timed apart (Note [Where the time goes]).
Status write_gray(const std::filesystem::path& path, const Mask& mask,
                  const std::filesystem::path& beneath) {
  Result<std::vector<std::uint8_t>> png = [&] {
    ScopedStage encoding(Stage::kEncode);
    return encode_gray_png(mask);
  }();
  if (!png.ok()) return png.status();
  ScopedStage writing(Stage::kWrite);
  return write_file_atomically(path, *png, beneath).with_context(path.string());
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
  Result<std::vector<std::uint8_t>> png = [&] {
    ScopedStage encoding(Stage::kEncode);
    return encode_rgba_png(image, product);
  }();
  if (!png.ok()) return png.status();
  ScopedStage writing(Stage::kWrite);
  return write_file_atomically(path, *png).with_context(path.string());
}

}  // namespace segmentor
