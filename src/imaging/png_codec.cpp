// PNG reading through libpng: images for decode.h and strict masks for read_mask_png.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "imaging/codecs.h"
#include "imaging/file_io.h"
#include "imaging/png_encode.h"

namespace segmentor::imaging_internal {
namespace {

// Note [libpng errors and setjmp]
// Same discipline as Note [libjpeg errors and setjmp]: libpng's error callback longjmps back to
// run_png_read(), which keeps all state in the caller's PngReadJob and creates no objects with
// destructors. Warnings (bad ancillary CRCs, odd eXIf) are ignored; libpng already recovers.

enum class PngMode { kRgb, kGrayMask };
enum class PngOutcome { kOk, kFailed, kRejected };

struct PngReadJob {
  std::span<const std::uint8_t> bytes;
  std::size_t offset = 0;
  bool truncated = false;
  PngMode mode = PngMode::kRgb;
  std::string_view name;
  const DecodeOptions* options = nullptr;
  png_structp png = nullptr;
  png_infop info = nullptr;
  char message[256] = {};
  Status rejection;  // set with PngOutcome::kRejected
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // RGB or gray, rows packed
  std::vector<png_bytep> rows;
  std::vector<std::uint8_t> exif;
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* job = static_cast<PngReadJob*>(png_get_error_ptr(png));
  std::snprintf(job->message, sizeof(job->message), "%s", message);
  png_longjmp(png, 1);
}

void on_png_warning(png_structp /*png*/, png_const_charp /*message*/) {}

void on_png_read(png_structp png, png_bytep out, png_size_t length) {
  auto* job = static_cast<PngReadJob*>(png_get_io_ptr(png));
  if (job->bytes.size() - job->offset < length) {
    job->truncated = true;
    png_error(png, "unexpected end of data");
  }
  std::memcpy(out, job->bytes.data() + job->offset, length);
  job->offset += length;
}

// See Note [libpng errors and setjmp].
PngOutcome run_png_read(PngReadJob& job) {
  if (setjmp(png_jmpbuf(job.png)) != 0) return PngOutcome::kFailed;

  png_set_read_fn(job.png, &job, on_png_read);
  png_read_info(job.png, job.info);
  png_uint_32 width = 0;
  png_uint_32 height = 0;
  int bit_depth = 0;
  int color_type = 0;
  int interlace = 0;
  png_get_IHDR(job.png, job.info, &width, &height, &bit_depth, &color_type, &interlace, nullptr,
               nullptr);
  job.rejection = check_dimensions(width, height, job.name, "PNG", *job.options);
  if (!job.rejection.ok()) return PngOutcome::kRejected;

  int channels = 3;
  if (job.mode == PngMode::kGrayMask) {
    if (color_type != PNG_COLOR_TYPE_GRAY || bit_depth != 8 ||
        png_get_valid(job.png, job.info, PNG_INFO_tRNS) != 0) {
      job.rejection = invalid_argument(
          prefixed(job.name, "not an 8-bit grayscale PNG without alpha (colour type " +
                                 std::to_string(color_type) + ", bit depth " +
                                 std::to_string(bit_depth) + ")"));
      return PngOutcome::kRejected;
    }
    channels = 1;
  } else {
    // Everything becomes 8-bit RGB; tRNS and alpha channels are dropped.
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(job.png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
      png_set_expand_gray_1_2_4_to_8(job.png);
    }
    if (bit_depth == 16) png_set_scale_16(job.png);
    png_set_strip_alpha(job.png);
    if (color_type == PNG_COLOR_TYPE_GRAY || color_type == PNG_COLOR_TYPE_GRAY_ALPHA) {
      png_set_gray_to_rgb(job.png);
    }
  }
  png_set_interlace_handling(job.png);
  png_read_update_info(job.png, job.info);

  const std::size_t stride = static_cast<std::size_t>(width) * static_cast<std::size_t>(channels);
  if (png_get_channels(job.png, job.info) != channels ||
      png_get_rowbytes(job.png, job.info) != stride) {
    std::snprintf(job.message, sizeof(job.message), "unexpected row layout after transforms");
    return PngOutcome::kFailed;
  }
  job.width = static_cast<int>(width);
  job.height = static_cast<int>(height);
  job.pixels.resize(stride * height);
  job.rows.resize(height);
  for (std::size_t y = 0; y < height; ++y) job.rows[y] = job.pixels.data() + y * stride;
  png_read_image(job.png, job.rows.data());
  // Reads the chunks after IDAT (an eXIf may sit there) and checks the stream ends properly.
  png_read_end(job.png, job.info);

  if (job.mode == PngMode::kRgb) {
    png_uint_32 exif_size = 0;
    png_bytep exif = nullptr;
    if (png_get_eXIf_1(job.png, job.info, &exif_size, &exif) != 0 && exif != nullptr) {
      job.exif.assign(exif, exif + exif_size);
    }
  }
  return PngOutcome::kOk;
}

// Runs one read and turns the outcome into a Status; on success the job holds the pixels.
Status read_png(PngReadJob& job) {
  job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, on_png_error, on_png_warning);
  if (job.png == nullptr) return out_of_memory(prefixed(job.name, "cannot create PNG reader"));
  job.info = png_create_info_struct(job.png);
  if (job.info == nullptr) {
    png_destroy_read_struct(&job.png, nullptr, nullptr);
    return out_of_memory(prefixed(job.name, "cannot create PNG reader"));
  }
  const PngOutcome outcome = run_png_read(job);
  png_destroy_read_struct(&job.png, &job.info, nullptr);
  switch (outcome) {
    case PngOutcome::kOk:
      return Status::Ok();
    case PngOutcome::kRejected:
      return job.rejection;
    case PngOutcome::kFailed:
      break;
  }
  if (job.truncated)
    return corrupt_data(prefixed(job.name, "truncated PNG (premature end of data)"));
  return corrupt_data(prefixed(job.name, std::string("corrupt PNG: ") + job.message));
}

}  // namespace

Result<DecodedImage> decode_png(std::span<const std::uint8_t> bytes, std::string_view name,
                                const DecodeOptions& options) {
  PngReadJob job;
  job.bytes = bytes;
  job.mode = PngMode::kRgb;
  job.name = name;
  job.options = &options;
  SEGMENTOR_RETURN_IF_ERROR(read_png(job));
  DecodedImage out;
  out.image.width = job.width;
  out.image.height = job.height;
  out.image.pixels = std::move(job.pixels);
  out.exif = std::move(job.exif);
  return out;
}

}  // namespace segmentor::imaging_internal

namespace segmentor {

Result<Mask> read_mask_png(const std::filesystem::path& path) {
  SEGMENTOR_ASSIGN_OR_RETURN(std::vector<std::uint8_t> bytes, read_file_bytes(path));
  const std::string name = path.string();
  if (sniff_image_format(bytes) != ImageFormat::kPng) {
    return invalid_argument(name + ": not a PNG file");
  }
  const DecodeOptions options;
  imaging_internal::PngReadJob job;
  job.bytes = bytes;
  job.mode = imaging_internal::PngMode::kGrayMask;
  job.name = name;
  job.options = &options;
  SEGMENTOR_RETURN_IF_ERROR(imaging_internal::read_png(job));
  return Mask{job.width, job.height, std::move(job.pixels)};
}

}  // namespace segmentor
