#include "imaging/png_encode.h"

#include <png.h>
#include <zlib.h>

#include <csetjmp>
#include <cstdio>
#include <new>
#include <string>

namespace segmentor {
namespace {

// Note [Mask PNG compression]
// Masks are written once per frame and read rarely, so encode time matters more than size.
// Binary masks are long runs of 0 and 255, which zlib's run-length strategy captures at level 1.
// Measured on a 1920x1080 mask with a rectangle and 20 discs (shared 2-core dev box, so only the
// ratios mean much): RLE+no filter 11.6 KB in 1.0x time; RLE+Up 11.1 KB in 1.5x; RLE+Sub 15.0 KB
// in 1.3x; default strategy level 1 28.9 KB in 1.0x; libpng defaults (level 6, adaptive
// filters) 13.8 KB in 5.5x; Huffman-only 343 KB in 4.8x. Hence RLE, level 1, no filter.
constexpr int kCompressionLevel = 1;
constexpr int kCompressionStrategy = Z_RLE;
constexpr int kMaskFilter = PNG_FILTER_NONE;
// Cut-outs carry photo pixels, where the Sub filter pays for itself.
constexpr int kRgbaFilter = PNG_FILTER_SUB;

enum class PngKind { kGray, kRgba };

// Same setjmp discipline as Note [libpng errors and setjmp] in png_codec.cpp: all state lives in
// the caller's PngWriteJob and run_png_write() creates no objects with destructors.
struct PngWriteJob {
  PngKind kind = PngKind::kGray;
  const Mask* mask = nullptr;       // kGray: the pixels; kRgba: the alpha
  const RgbImage* image = nullptr;  // kRgba only
  png_structp png = nullptr;
  png_infop info = nullptr;
  std::vector<std::uint8_t> out;
  std::vector<std::uint8_t> row;  // kRgba interleaving scratch
  char message[256] = {};
  bool out_of_memory = false;
};

void on_png_error(png_structp png, png_const_charp message) {
  auto* job = static_cast<PngWriteJob*>(png_get_error_ptr(png));
  std::snprintf(job->message, sizeof(job->message), "%s", message);
  png_longjmp(png, 1);
}

void on_png_warning(png_structp /*png*/, png_const_charp /*message*/) {}

void on_png_write(png_structp png, png_bytep data, png_size_t length) {
  auto* job = static_cast<PngWriteJob*>(png_get_io_ptr(png));
  try {
    job->out.insert(job->out.end(), data, data + length);
  } catch (const std::bad_alloc&) {
    job->out_of_memory = true;
    png_error(png, "out of memory");
  }
}

void on_png_flush(png_structp /*png*/) {}

bool run_png_write(PngWriteJob& job) {
  if (setjmp(png_jmpbuf(job.png)) != 0) return false;

  const auto width = static_cast<png_uint_32>(job.mask->width);
  const auto height = static_cast<png_uint_32>(job.mask->height);
  const bool gray = job.kind == PngKind::kGray;
  png_set_write_fn(job.png, &job, on_png_write, on_png_flush);
  png_set_IHDR(job.png, job.info, width, height, 8,
               gray ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB_ALPHA, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_set_compression_level(job.png, kCompressionLevel);
  png_set_compression_strategy(job.png, gray ? kCompressionStrategy : Z_DEFAULT_STRATEGY);
  png_set_filter(job.png, PNG_FILTER_TYPE_BASE, gray ? kMaskFilter : kRgbaFilter);
  png_write_info(job.png, job.info);

  const std::size_t w = width;
  for (std::size_t y = 0; y < height; ++y) {
    const std::uint8_t* alpha_row = job.mask->values.data() + y * w;
    if (gray) {
      // libpng does not write through row pointers; the cast only drops const for its C API.
      png_write_row(job.png, const_cast<png_bytep>(alpha_row));
      continue;
    }
    const std::uint8_t* rgb = job.image->pixels.data() + y * w * 3;
    std::uint8_t* dst = job.row.data();
    for (std::size_t x = 0; x < w; ++x, rgb += 3, dst += 4) {
      dst[0] = rgb[0];
      dst[1] = rgb[1];
      dst[2] = rgb[2];
      dst[3] = alpha_row[x];
    }
    png_write_row(job.png, job.row.data());
  }
  png_write_end(job.png, job.info);
  return true;
}

Result<std::vector<std::uint8_t>> encode(PngWriteJob& job) {
  try {
    const std::size_t pixels = job.mask->pixel_count();
    // Binary masks compress to a few percent; photos much less. One reallocation at most.
    job.out.reserve(job.kind == PngKind::kGray ? pixels / 16 + 1024 : pixels * 2 + 1024);
    if (job.kind == PngKind::kRgba) job.row.resize(static_cast<std::size_t>(job.mask->width) * 4);
  } catch (const std::bad_alloc&) {
    return out_of_memory("PNG encoder: cannot allocate the output buffer");
  }
  job.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &job, on_png_error, on_png_warning);
  if (job.png == nullptr) return out_of_memory("PNG encoder: cannot create libpng writer");
  job.info = png_create_info_struct(job.png);
  if (job.info == nullptr) {
    png_destroy_write_struct(&job.png, nullptr);
    return out_of_memory("PNG encoder: cannot create libpng writer");
  }
  const bool ok = run_png_write(job);
  png_destroy_write_struct(&job.png, &job.info);
  if (!ok) {
    if (job.out_of_memory) return out_of_memory("PNG encoder: out of memory");
    return internal_error(std::string("PNG encoder: ") + job.message);
  }
  return std::move(job.out);
}

std::string size_text(int width, int height, std::size_t values) {
  return std::to_string(width) + "x" + std::to_string(height) + " with " + std::to_string(values) +
         " values";
}

}  // namespace

Result<std::vector<std::uint8_t>> encode_gray_png(const Mask& mask) {
  if (mask.width <= 0 || mask.height <= 0 || mask.values.size() != mask.pixel_count()) {
    return invalid_argument("encode_gray_png: bad mask " +
                            size_text(mask.width, mask.height, mask.values.size()));
  }
  PngWriteJob job;
  job.kind = PngKind::kGray;
  job.mask = &mask;
  return encode(job);
}

Result<std::vector<std::uint8_t>> encode_rgba_png(const RgbImage& image, const Mask& alpha) {
  if (image.width <= 0 || image.height <= 0 || image.pixels.size() != image.pixel_count() * 3 ||
      alpha.width != image.width || alpha.height != image.height ||
      alpha.values.size() != alpha.pixel_count()) {
    return invalid_argument(
        "encode_rgba_png: image " + size_text(image.width, image.height, image.pixels.size()) +
        " does not match alpha " + size_text(alpha.width, alpha.height, alpha.values.size()));
  }
  PngWriteJob job;
  job.kind = PngKind::kRgba;
  job.mask = &alpha;
  job.image = &image;
  return encode(job);
}

}  // namespace segmentor
