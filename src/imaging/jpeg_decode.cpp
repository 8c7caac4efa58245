// JPEG decoding through libjpeg(-turbo).
#include <csetjmp>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

// jpeglib.h needs size_t and FILE declared before it, so it stays after the standard headers.
// clang-format off
#include <jpeglib.h>
#include <jerror.h>
// clang-format on

#include "imaging/codecs.h"

namespace segmentor::imaging_internal {
namespace {

// Note [libjpeg errors and setjmp]
// libjpeg reports fatal errors by calling error_exit, which must not return. We longjmp back to
// run_jpeg_decode(). To keep that defined in C++, the function that calls setjmp creates no
// automatic objects with non-trivial destructors and keeps every piece of state in the caller's
// JpegJob (reached through a reference that never changes), so nothing is skipped or stale
// after the jump. The caller then destroys the libjpeg object and builds the Status.
//
// Warnings go through emit_message(-1). "Premature end of JPEG file" (JWRN_JPEG_EOF) is what
// libjpeg says when the data runs out; it then pads the image with gray and carries on. We make
// that warning fatal: a truncated upload must fail, not produce a half-gray mask. Other warnings
// (e.g. extraneous bytes before a marker, common in camera files) are tolerated.
struct JpegErrorManager {
  jpeg_error_mgr pub;  // first member: libjpeg sees only this part
  std::jmp_buf jump;
  bool truncated;
  char message[JMSG_LENGTH_MAX];
};

void on_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

void on_emit_message(j_common_ptr cinfo, int msg_level) {
  if (msg_level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
    auto* err = reinterpret_cast<JpegErrorManager*>(cinfo->err);
    err->truncated = true;
    (*cinfo->err->format_message)(cinfo, err->message);
    std::longjmp(err->jump, 1);
  }
  if (msg_level < 0) ++cinfo->err->num_warnings;
}

enum class JpegOutcome { kOk, kFailed, kTooLarge };

struct JpegJob {
  std::span<const std::uint8_t> bytes;
  std::string_view name;
  const DecodeOptions* options = nullptr;
  jpeg_decompress_struct cinfo{};
  JpegErrorManager err{};
  bool created = false;
  Status size_status;
  DecodedImage out;
  std::vector<std::uint8_t> cmyk_rows;  // scratch for CMYK/YCCK input
  std::vector<JSAMPROW> row_pointers;
};

// Converts one CMYK row to RGB. Adobe writes inverted CMYK (the common case, saw_Adobe_marker).
void cmyk_to_rgb(const std::uint8_t* cmyk, std::uint8_t* rgb, int width, bool inverted) {
  for (int x = 0; x < width; ++x, cmyk += 4, rgb += 3) {
    unsigned c = cmyk[0], m = cmyk[1], y = cmyk[2], k = cmyk[3];
    if (!inverted) {
      c = 255 - c;
      m = 255 - m;
      y = 255 - y;
      k = 255 - k;
    }
    rgb[0] = static_cast<std::uint8_t>((c * k + 127) / 255);
    rgb[1] = static_cast<std::uint8_t>((m * k + 127) / 255);
    rgb[2] = static_cast<std::uint8_t>((y * k + 127) / 255);
  }
}

void copy_exif(const jpeg_decompress_struct& cinfo, std::vector<std::uint8_t>& exif) {
  static constexpr std::uint8_t kExifHeader[] = {'E', 'x', 'i', 'f', 0, 0};
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m != nullptr; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length > sizeof(kExifHeader) &&
        std::memcmp(m->data, kExifHeader, sizeof(kExifHeader)) == 0) {
      exif.assign(m->data, m->data + m->data_length);
      return;
    }
  }
}

// See Note [libjpeg errors and setjmp]: no non-trivial locals below the setjmp.
JpegOutcome run_jpeg_decode(JpegJob& job) {
  if (setjmp(job.err.jump) != 0) return JpegOutcome::kFailed;

  jpeg_create_decompress(&job.cinfo);
  job.created = true;
  jpeg_mem_src(&job.cinfo, job.bytes.data(), static_cast<unsigned long>(job.bytes.size()));
  jpeg_save_markers(&job.cinfo, JPEG_APP0 + 1, 0xffff);
  jpeg_read_header(&job.cinfo, TRUE);

  job.size_status = check_dimensions(job.cinfo.image_width, job.cinfo.image_height, job.name,
                                     "JPEG", *job.options);
  if (!job.size_status.ok()) return JpegOutcome::kTooLarge;
  // Saved markers live in libjpeg's image pool, which jpeg_finish_decompress frees.
  copy_exif(job.cinfo, job.out.exif);

  const bool cmyk =
      job.cinfo.jpeg_color_space == JCS_CMYK || job.cinfo.jpeg_color_space == JCS_YCCK;
  // libjpeg-turbo converts grayscale and YCbCr to RGB itself.
  job.cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
  jpeg_start_decompress(&job.cinfo);

  const int width = static_cast<int>(job.cinfo.output_width);
  const int height = static_cast<int>(job.cinfo.output_height);
  const int channels = job.cinfo.output_components;
  if (channels != (cmyk ? 4 : 3)) {
    std::snprintf(job.err.message, sizeof(job.err.message), "unexpected %d output channels",
                  channels);
    return JpegOutcome::kFailed;
  }
  RgbImage& image = job.out.image;
  image.width = width;
  image.height = height;
  image.pixels.resize(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) * 3);

  const std::size_t rgb_stride = static_cast<std::size_t>(width) * 3;
  const std::size_t in_stride =
      static_cast<std::size_t>(width) * static_cast<std::size_t>(channels);
  const int batch = job.cinfo.rec_outbuf_height > 0 ? job.cinfo.rec_outbuf_height : 1;
  job.row_pointers.resize(static_cast<std::size_t>(batch));
  if (cmyk) job.cmyk_rows.resize(in_stride * static_cast<std::size_t>(batch));

  while (job.cinfo.output_scanline < job.cinfo.output_height) {
    const std::size_t first = job.cinfo.output_scanline;
    const std::size_t rows =
        std::min<std::size_t>(static_cast<std::size_t>(batch), job.cinfo.output_height - first);
    for (std::size_t r = 0; r < rows; ++r) {
      // Decode straight into the output buffer unless a colour conversion follows.
      job.row_pointers[r] = cmyk ? job.cmyk_rows.data() + r * in_stride
                                 : image.pixels.data() + (first + r) * rgb_stride;
    }
    const JDIMENSION got =
        jpeg_read_scanlines(&job.cinfo, job.row_pointers.data(), static_cast<JDIMENSION>(rows));
    if (cmyk) {
      for (JDIMENSION r = 0; r < got; ++r) {
        cmyk_to_rgb(job.cmyk_rows.data() + r * in_stride,
                    image.pixels.data() + (first + r) * rgb_stride, width,
                    job.cinfo.saw_Adobe_marker != 0);
      }
    }
    if (got == 0) {
      std::snprintf(job.err.message, sizeof(job.err.message), "decoder made no progress");
      return JpegOutcome::kFailed;
    }
  }
  // Reads up to EOI, so a file cut after the last scanline is still caught as truncated.
  jpeg_finish_decompress(&job.cinfo);
  return JpegOutcome::kOk;
}

}  // namespace

Result<DecodedImage> decode_jpeg(std::span<const std::uint8_t> bytes, std::string_view name,
                                 const DecodeOptions& options) {
  JpegJob job;
  job.bytes = bytes;
  job.name = name;
  job.options = &options;
  job.cinfo.err = jpeg_std_error(&job.err.pub);
  job.err.pub.error_exit = on_error_exit;
  job.err.pub.emit_message = on_emit_message;

  const JpegOutcome outcome = run_jpeg_decode(job);
  const int msg_code = job.err.pub.msg_code;
  if (job.created) jpeg_destroy_decompress(&job.cinfo);

  switch (outcome) {
    case JpegOutcome::kOk:
      return std::move(job.out);
    case JpegOutcome::kTooLarge:
      return job.size_status;
    case JpegOutcome::kFailed:
      break;
  }
  if (job.err.truncated) {
    return corrupt_data(prefixed(name, "truncated JPEG (premature end of data)"));
  }
  if (msg_code == JERR_OUT_OF_MEMORY) {
    return out_of_memory(prefixed(name, std::string("JPEG decoder: ") + job.err.message));
  }
  return corrupt_data(prefixed(name, std::string("corrupt JPEG: ") + job.err.message));
}

}  // namespace segmentor::imaging_internal
