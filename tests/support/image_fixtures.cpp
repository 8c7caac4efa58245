#include "support/image_fixtures.h"

#include <png.h>
#include <webp/encode.h>
#include <zlib.h>

#include <algorithm>
#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <string>

// jpeglib.h needs size_t and FILE declared before it, so it stays after the standard headers.
// clang-format off
#include <jpeglib.h>
// clang-format on

namespace segmentor::fixtures {
namespace {

bool valid(const RgbImage& image) {
  return image.width > 0 && image.height > 0 && image.pixels.size() == image.pixel_count() * 3;
}

bool matches(const Mask* mask, const RgbImage& image) {
  return mask != nullptr && mask->width == image.width && mask->height == image.height &&
         mask->values.size() == mask->pixel_count();
}

void put_u16(std::vector<std::uint8_t>& out, unsigned v, bool big_endian) {
  if (big_endian) {
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v));
  } else {
    out.push_back(static_cast<std::uint8_t>(v));
    out.push_back(static_cast<std::uint8_t>(v >> 8));
  }
}

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t v, bool big_endian) {
  if (big_endian) {
    put_u16(out, v >> 16, true);
    put_u16(out, v & 0xffff, true);
  } else {
    put_u16(out, v & 0xffff, false);
    put_u16(out, v >> 16, false);
  }
}

void put_u24le(std::vector<std::uint8_t>& out, std::uint32_t v) {
  out.push_back(static_cast<std::uint8_t>(v));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v >> 16));
}

void put_fourcc(std::vector<std::uint8_t>& out, const char* fourcc) {
  out.insert(out.end(), fourcc, fourcc + 4);
}

// A RIFF chunk: fourcc, little-endian size, payload, pad byte to an even length.
void put_chunk(std::vector<std::uint8_t>& out, const char* fourcc,
               std::span<const std::uint8_t> payload) {
  put_fourcc(out, fourcc);
  put_u32(out, static_cast<std::uint32_t>(payload.size()), false);
  out.insert(out.end(), payload.begin(), payload.end());
  if (payload.size() % 2 != 0) out.push_back(0);
}

// ---- PNG writing (libpng longjmps on error; see imaging's png_codec.cpp for the discipline) ----

struct PngSink {
  std::vector<std::uint8_t> out;
};

void png_sink_write(png_structp png, png_bytep data, png_size_t length) {
  auto* sink = static_cast<PngSink*>(png_get_io_ptr(png));
  sink->out.insert(sink->out.end(), data, data + length);
}
void png_sink_flush(png_structp /*png*/) {}

struct PngPlan {
  png_uint_32 width = 0;
  png_uint_32 height = 0;
  int bit_depth = 8;
  int color_type = PNG_COLOR_TYPE_RGB;
  bool interlaced = false;
  std::vector<png_color> palette;
  std::vector<png_byte> trns;
  std::vector<std::uint8_t> exif;
  std::vector<std::uint8_t> pixels;  // packed rows, big-endian samples when 16-bit
  std::size_t stride = 0;
  std::vector<png_bytep> rows;
};

bool run_png_write(png_structp png, png_infop info, PngPlan& plan, PngSink& sink) {
  if (setjmp(png_jmpbuf(png)) != 0) return false;
  png_set_write_fn(png, &sink, png_sink_write, png_sink_flush);
  png_set_IHDR(png, info, plan.width, plan.height, plan.bit_depth, plan.color_type,
               plan.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!plan.palette.empty()) {
    png_set_PLTE(png, info, plan.palette.data(), static_cast<int>(plan.palette.size()));
  }
  if (!plan.trns.empty()) {
    png_set_tRNS(png, info, plan.trns.data(), static_cast<int>(plan.trns.size()), nullptr);
  }
  if (!plan.exif.empty()) {
    png_set_eXIf_1(png, info, static_cast<png_uint_32>(plan.exif.size()), plan.exif.data());
  }
  png_write_info(png, info);
  png_write_image(png, plan.rows.data());
  png_write_end(png, info);
  return true;
}

std::vector<std::uint8_t> encode_png(PngPlan& plan) {
  PngSink sink;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  if (png == nullptr) return {};
  png_infop info = png_create_info_struct(png);
  plan.rows.resize(plan.height);
  for (std::size_t y = 0; y < plan.height; ++y) plan.rows[y] = plan.pixels.data() + y * plan.stride;
  const bool ok = info != nullptr && run_png_write(png, info, plan, sink);
  png_destroy_write_struct(&png, info != nullptr ? &info : nullptr);
  if (!ok) return {};
  return std::move(sink.out);
}

// Segment walk of a JPEG: returns the offset of the SOFn payload, or 0.
std::size_t find_sof_payload(const std::vector<std::uint8_t>& jpeg) {
  std::size_t pos = 2;
  while (pos + 4 <= jpeg.size() && jpeg[pos] == 0xff) {
    const std::uint8_t marker = jpeg[pos + 1];
    const std::size_t length = (std::size_t{jpeg[pos + 2]} << 8) | jpeg[pos + 3];
    if (marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc) {
      return pos + 4;
    }
    pos += 2 + length;
  }
  return 0;
}

}  // namespace

RgbImage solid_image(int width, int height, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
  RgbImage image{width, height, {}};
  image.pixels.resize(image.pixel_count() * 3);
  for (std::size_t i = 0; i < image.pixels.size(); i += 3) {
    image.pixels[i] = r;
    image.pixels[i + 1] = g;
    image.pixels[i + 2] = b;
  }
  return image;
}

void fill_rect(RgbImage& image, int left, int top, int right, int bottom, std::uint8_t r,
               std::uint8_t g, std::uint8_t b) {
  for (int y = std::max(top, 0); y < std::min(bottom, image.height); ++y) {
    for (int x = std::max(left, 0); x < std::min(right, image.width); ++x) {
      const std::size_t i = (static_cast<std::size_t>(y) * static_cast<std::size_t>(image.width) +
                             static_cast<std::size_t>(x)) *
                            3;
      image.pixels[i] = r;
      image.pixels[i + 1] = g;
      image.pixels[i + 2] = b;
    }
  }
}

RgbImage red_rectangle_on_black(int width, int height, int left, int top, int right, int bottom) {
  RgbImage image = solid_image(width, height, 0, 0, 0);
  fill_rect(image, left, top, right, bottom, 255, 0, 0);
  return image;
}

Mask rectangle_mask(int width, int height, int left, int top, int right, int bottom) {
  Mask mask = Mask::zeros(width, height);
  for (int y = std::max(top, 0); y < std::min(bottom, height); ++y) {
    for (int x = std::max(left, 0); x < std::min(right, width); ++x) {
      mask.values[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) +
                  static_cast<std::size_t>(x)] = 255;
    }
  }
  return mask;
}

std::array<std::uint8_t, 3> pixel_at(const RgbImage& image, int x, int y) {
  const std::size_t i = (static_cast<std::size_t>(y) * static_cast<std::size_t>(image.width) +
                         static_cast<std::size_t>(x)) *
                        3;
  return {image.pixels[i], image.pixels[i + 1], image.pixels[i + 2]};
}

std::vector<std::uint8_t> exif_orientation_block(int orientation, bool big_endian,
                                                 bool with_exif_header) {
  std::vector<std::uint8_t> out;
  if (with_exif_header) out = {'E', 'x', 'i', 'f', 0, 0};
  // TIFF header: byte order, 42, offset of IFD0 (right after the 8-byte header).
  if (big_endian) {
    out.push_back('M');
    out.push_back('M');
  } else {
    out.push_back('I');
    out.push_back('I');
  }
  put_u16(out, 42, big_endian);
  put_u32(out, 8, big_endian);
  // IFD0: one entry, Orientation (0x0112), SHORT (3), count 1, value left-aligned in 4 bytes.
  put_u16(out, 1, big_endian);
  put_u16(out, 0x0112, big_endian);
  put_u16(out, 3, big_endian);
  put_u32(out, 1, big_endian);
  put_u16(out, static_cast<unsigned>(orientation), big_endian);
  put_u16(out, 0, big_endian);
  put_u32(out, 0, big_endian);  // no next IFD
  return out;
}

std::vector<std::uint8_t> jpeg_bytes(const RgbImage& image, int quality, int exif_orientation,
                                     JpegColor color) {
  if (!valid(image) || quality < 1 || quality > 100) return {};
  const int channels = color == JpegColor::kGray ? 1 : (color == JpegColor::kCmyk ? 4 : 3);
  std::vector<std::uint8_t> input;
  if (color == JpegColor::kRgb) {
    input = image.pixels;
  } else {
    input.reserve(image.pixel_count() * static_cast<std::size_t>(channels));
    for (std::size_t i = 0; i < image.pixels.size(); i += 3) {
      if (color == JpegColor::kGray) {
        input.push_back(image.pixels[i]);
      } else {
        // Adobe CMYK is stored inverted: 255 - ink. With no black ink, C' = R, M' = G, Y' = B.
        input.insert(input.end(), {image.pixels[i], image.pixels[i + 1], image.pixels[i + 2], 255});
      }
    }
  }

  // The default error manager exits the process: acceptable in a fixture given validated input.
  jpeg_compress_struct cinfo{};
  jpeg_error_mgr err{};
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = static_cast<JDIMENSION>(image.width);
  cinfo.image_height = static_cast<JDIMENSION>(image.height);
  cinfo.input_components = channels;
  cinfo.in_color_space =
      color == JpegColor::kGray ? JCS_GRAYSCALE : (color == JpegColor::kCmyk ? JCS_CMYK : JCS_RGB);
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  if (exif_orientation != 0) {
    const std::vector<std::uint8_t> exif = exif_orientation_block(exif_orientation);
    jpeg_write_marker(&cinfo, JPEG_APP0 + 1, exif.data(), static_cast<unsigned>(exif.size()));
  }
  const std::size_t stride =
      static_cast<std::size_t>(image.width) * static_cast<std::size_t>(channels);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = input.data() + cinfo.next_scanline * stride;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::vector<std::uint8_t> out(buffer, buffer + size);
  jpeg_destroy_compress(&cinfo);
  std::free(buffer);
  return out;
}

std::vector<std::uint8_t> png_bytes(const RgbImage& image, const PngFixtureOptions& options) {
  if (!valid(image)) return {};
  PngPlan plan;
  plan.width = static_cast<png_uint_32>(image.width);
  plan.height = static_cast<png_uint_32>(image.height);
  plan.interlaced = options.interlaced;
  if (options.exif_orientation != 0) {
    plan.exif = exif_orientation_block(options.exif_orientation, false, false);
  }
  const bool has_alpha = options.color == PngColor::kRgba || options.color == PngColor::kGrayAlpha;
  if (has_alpha && !matches(options.alpha, image)) return {};
  if (options.alpha != nullptr && !matches(options.alpha, image)) return {};

  std::vector<std::uint8_t> samples;  // 8-bit samples per pixel, before any 16-bit widening
  int per_pixel = 0;
  switch (options.color) {
    case PngColor::kRgb:
      plan.color_type = PNG_COLOR_TYPE_RGB;
      per_pixel = 3;
      break;
    case PngColor::kRgba:
      plan.color_type = PNG_COLOR_TYPE_RGB_ALPHA;
      per_pixel = 4;
      break;
    case PngColor::kGray:
      plan.color_type = PNG_COLOR_TYPE_GRAY;
      per_pixel = 1;
      break;
    case PngColor::kGrayAlpha:
      plan.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
      per_pixel = 2;
      break;
    case PngColor::kPalette:
      plan.color_type = PNG_COLOR_TYPE_PALETTE;
      per_pixel = 1;
      break;
  }
  std::map<std::array<std::uint8_t, 3>, std::uint8_t> index_of;
  for (std::size_t p = 0; p < image.pixel_count(); ++p) {
    const std::uint8_t* rgb = image.pixels.data() + p * 3;
    const std::uint8_t alpha = options.alpha != nullptr ? options.alpha->values[p] : 255;
    switch (options.color) {
      case PngColor::kRgb:
        samples.insert(samples.end(), rgb, rgb + 3);
        break;
      case PngColor::kRgba:
        samples.insert(samples.end(), rgb, rgb + 3);
        samples.push_back(alpha);
        break;
      case PngColor::kGray:
        samples.push_back(rgb[0]);
        break;
      case PngColor::kGrayAlpha:
        samples.push_back(rgb[0]);
        samples.push_back(alpha);
        break;
      case PngColor::kPalette: {
        const std::array<std::uint8_t, 3> key = {rgb[0], rgb[1], rgb[2]};
        auto it = index_of.find(key);
        if (it == index_of.end()) {
          if (plan.palette.size() == 256) return {};
          it = index_of.emplace(key, static_cast<std::uint8_t>(plan.palette.size())).first;
          plan.palette.push_back(png_color{rgb[0], rgb[1], rgb[2]});
          // The first pixel of each colour decides that entry's transparency.
          plan.trns.push_back(alpha);
        }
        samples.push_back(it->second);
        break;
      }
    }
  }
  if (options.color != PngColor::kPalette || options.alpha == nullptr) plan.trns.clear();

  const bool wide = options.sixteen_bit && options.color != PngColor::kPalette;
  plan.bit_depth = wide ? 16 : 8;
  plan.stride =
      static_cast<std::size_t>(image.width) * static_cast<std::size_t>(per_pixel) * (wide ? 2 : 1);
  if (wide) {
    plan.pixels.reserve(samples.size() * 2);
    for (std::uint8_t v : samples) {  // v * 257, big-endian: both bytes equal v
      plan.pixels.push_back(v);
      plan.pixels.push_back(v);
    }
  } else {
    plan.pixels = std::move(samples);
  }
  return encode_png(plan);
}

std::vector<std::uint8_t> webp_bytes(const RgbImage& image, bool lossless, int quality,
                                     int exif_orientation) {
  if (!valid(image)) return {};
  std::uint8_t* encoded = nullptr;
  const std::size_t size =
      lossless ? WebPEncodeLosslessRGB(image.pixels.data(), image.width, image.height,
                                       image.width * 3, &encoded)
               : WebPEncodeRGB(image.pixels.data(), image.width, image.height, image.width * 3,
                               static_cast<float>(quality), &encoded);
  std::vector<std::uint8_t> simple(encoded, encoded + size);
  WebPFree(encoded);
  if (simple.size() < 20 || exif_orientation == 0) return simple;

  // Re-wrap as extended format: RIFF, WEBP, VP8X (EXIF flag), the image chunk, EXIF.
  const std::span<const std::uint8_t> image_chunk(simple.data() + 12, simple.size() - 12);
  std::vector<std::uint8_t> vp8x;
  vp8x.push_back(0x08);  // EXIF present
  vp8x.insert(vp8x.end(), {0, 0, 0});
  put_u24le(vp8x, static_cast<std::uint32_t>(image.width - 1));
  put_u24le(vp8x, static_cast<std::uint32_t>(image.height - 1));
  std::vector<std::uint8_t> body;
  put_fourcc(body, "WEBP");
  put_chunk(body, "VP8X", vp8x);
  body.insert(body.end(), image_chunk.begin(), image_chunk.end());
  put_chunk(body, "EXIF", exif_orientation_block(exif_orientation, false, false));
  std::vector<std::uint8_t> out;
  put_fourcc(out, "RIFF");
  put_u32(out, static_cast<std::uint32_t>(body.size()), false);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

std::vector<std::uint8_t> animated_webp_bytes(const std::vector<RgbImage>& frames) {
  if (frames.empty()) return {};
  const int width = frames.front().width;
  const int height = frames.front().height;
  std::vector<std::uint8_t> body;
  put_fourcc(body, "WEBP");
  std::vector<std::uint8_t> vp8x = {0x02, 0, 0, 0};  // animation flag
  put_u24le(vp8x, static_cast<std::uint32_t>(width - 1));
  put_u24le(vp8x, static_cast<std::uint32_t>(height - 1));
  put_chunk(body, "VP8X", vp8x);
  const std::vector<std::uint8_t> anim = {0, 0, 0, 0, 0, 0};  // background, loop forever
  put_chunk(body, "ANIM", anim);
  for (const RgbImage& frame : frames) {
    if (!valid(frame) || frame.width != width || frame.height != height) return {};
    const std::vector<std::uint8_t> simple = webp_bytes(frame, true);
    if (simple.size() < 20) return {};
    std::vector<std::uint8_t> anmf;
    put_u24le(anmf, 0);  // x / 2
    put_u24le(anmf, 0);  // y / 2
    put_u24le(anmf, static_cast<std::uint32_t>(width - 1));
    put_u24le(anmf, static_cast<std::uint32_t>(height - 1));
    put_u24le(anmf, 100);  // duration, ms
    anmf.push_back(0x02);  // do not blend, do not dispose
    anmf.insert(anmf.end(), simple.begin() + 12, simple.end());
    put_chunk(body, "ANMF", anmf);
  }
  std::vector<std::uint8_t> out;
  put_fourcc(out, "RIFF");
  put_u32(out, static_cast<std::uint32_t>(body.size()), false);
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

std::vector<std::uint8_t> jpeg_claiming_size(int width, int height) {
  if (width <= 0 || height <= 0 || width > 65535 || height > 65535) return {};
  std::vector<std::uint8_t> jpeg = jpeg_bytes(solid_image(16, 16, 128, 128, 128), 90);
  const std::size_t sof = find_sof_payload(jpeg);
  if (sof == 0 || sof + 5 > jpeg.size()) return {};
  // SOF payload: precision, height (BE16), width (BE16).
  jpeg[sof + 1] = static_cast<std::uint8_t>(height >> 8);
  jpeg[sof + 2] = static_cast<std::uint8_t>(height);
  jpeg[sof + 3] = static_cast<std::uint8_t>(width >> 8);
  jpeg[sof + 4] = static_cast<std::uint8_t>(width);
  return jpeg;
}

std::vector<std::uint8_t> png_claiming_size(std::uint32_t width, std::uint32_t height) {
  std::vector<std::uint8_t> png = png_bytes(solid_image(16, 16, 128, 128, 128));
  if (png.size() < 33) return {};
  // Signature (8), IHDR length (4), "IHDR" (4), width (BE32) at 16, height at 20, CRC at 29
  // over type + 13 data bytes.
  std::vector<std::uint8_t> be;
  put_u32(be, width, true);
  put_u32(be, height, true);
  std::copy(be.begin(), be.end(), png.begin() + 16);
  const uLong crc = crc32(crc32(0, nullptr, 0), png.data() + 12, 17);
  std::vector<std::uint8_t> crc_bytes;
  put_u32(crc_bytes, static_cast<std::uint32_t>(crc), true);
  std::copy(crc_bytes.begin(), crc_bytes.end(), png.begin() + 29);
  return png;
}

Status write_bytes(const std::filesystem::path& path, std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return invalid_argument(path.string() + ": fixture encoder produced nothing");
  std::error_code ec;
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return io_error(path.string() + ": cannot write fixture");
  return Status::Ok();
}

Status write_jpeg(const std::filesystem::path& path, const RgbImage& image, int quality,
                  int exif_orientation) {
  return write_bytes(path, jpeg_bytes(image, quality, exif_orientation));
}

Status write_png(const std::filesystem::path& path, const RgbImage& image,
                 const PngFixtureOptions& options) {
  return write_bytes(path, png_bytes(image, options));
}

Status write_png_with_alpha(const std::filesystem::path& path, const RgbImage& image,
                            const Mask& alpha) {
  PngFixtureOptions options;
  options.color = PngColor::kRgba;
  options.alpha = &alpha;
  return write_bytes(path, png_bytes(image, options));
}

Status write_webp(const std::filesystem::path& path, const RgbImage& image, bool lossless,
                  int exif_orientation) {
  return write_bytes(path, webp_bytes(image, lossless, 90, exif_orientation));
}

Status write_truncated_copy(const std::filesystem::path& source,
                            const std::filesystem::path& target, std::size_t keep_bytes) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(source, ec);
  std::ifstream in(source, std::ios::binary);
  if (ec || !in) return not_found(source.string() + ": cannot open fixture source");
  std::vector<std::uint8_t> bytes(size);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  if (bytes.size() <= keep_bytes) {
    return invalid_argument(source.string() + ": only " + std::to_string(bytes.size()) +
                            " bytes, cannot truncate to " + std::to_string(keep_bytes));
  }
  bytes.resize(keep_bytes);
  return write_bytes(target, bytes);
}

Status write_random_bytes(const std::filesystem::path& path, std::size_t count,
                          std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> bytes(count);
  for (auto& b : bytes) b = static_cast<std::uint8_t>(rng() & 0xff);
  // 0xFF starts JPEG, 0x89 PNG, 'R' RIFF/WebP: never let garbage look like an image.
  if (!bytes.empty() && (bytes[0] == 0xff || bytes[0] == 0x89 || bytes[0] == 'R')) bytes[0] = 0;
  return write_bytes(path, bytes);
}

}  // namespace segmentor::fixtures
