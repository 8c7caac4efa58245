// WebP decoding through libwebp (stills) and libwebpdemux (EXIF chunk, animations).
#include <webp/decode.h>
#include <webp/demux.h>

#include <memory>
#include <string>

#include "imaging/codecs.h"

namespace segmentor::imaging_internal {
namespace {

// Note [Animated WebP]
// Product feeds occasionally carry animated WebP. We return the first frame as the animation
// decoder composites it onto the canvas (areas the frame leaves transparent come out black once
// alpha is dropped) rather than failing the asset: the first frame is what a storefront shows as
// the still. The canvas size is checked against max_pixels before the decoder allocates it.

struct DemuxDeleter {
  void operator()(WebPDemuxer* demux) const { WebPDemuxDelete(demux); }
};
struct AnimDecoderDeleter {
  void operator()(WebPAnimDecoder* decoder) const { WebPAnimDecoderDelete(decoder); }
};

std::string describe(VP8StatusCode status) {
  switch (status) {
    case VP8_STATUS_OUT_OF_MEMORY:
      return "out of memory";
    case VP8_STATUS_INVALID_PARAM:
      return "invalid parameter";
    case VP8_STATUS_BITSTREAM_ERROR:
      return "bitstream error";
    case VP8_STATUS_UNSUPPORTED_FEATURE:
      return "unsupported feature";
    case VP8_STATUS_SUSPENDED:
      return "suspended";
    case VP8_STATUS_USER_ABORT:
      return "aborted";
    case VP8_STATUS_NOT_ENOUGH_DATA:
      return "not enough data";
    case VP8_STATUS_OK:
      break;
  }
  return "ok";
}

Status webp_error(std::string_view name, VP8StatusCode status) {
  if (status == VP8_STATUS_NOT_ENOUGH_DATA) {
    return corrupt_data(prefixed(name, "truncated WebP (premature end of data)"));
  }
  if (status == VP8_STATUS_OUT_OF_MEMORY) {
    return out_of_memory(prefixed(name, "WebP decoder: out of memory"));
  }
  return corrupt_data(prefixed(name, "corrupt WebP: " + describe(status)));
}

// The EXIF chunk of an extended-format (VP8X) file, or nothing. Simple-format files (a lone
// VP8/VP8L chunk) cannot carry metadata, so the demuxer is only started for VP8X.
std::vector<std::uint8_t> read_exif_chunk(std::span<const std::uint8_t> bytes) {
  std::vector<std::uint8_t> exif;
  if (bytes.size() < 16 || bytes[12] != 'V' || bytes[13] != 'P' || bytes[14] != '8' ||
      bytes[15] != 'X') {
    return exif;
  }
  const WebPData data{bytes.data(), bytes.size()};
  std::unique_ptr<WebPDemuxer, DemuxDeleter> demux(WebPDemux(&data));
  if (!demux) return exif;
  WebPChunkIterator chunk;
  if (WebPDemuxGetChunk(demux.get(), "EXIF", 1, &chunk) != 0) {
    exif.assign(chunk.chunk.bytes, chunk.chunk.bytes + chunk.chunk.size);
    WebPDemuxReleaseChunkIterator(&chunk);
  }
  return exif;
}

Status decode_first_frame(std::span<const std::uint8_t> bytes, std::string_view name,
                          RgbImage& image) {
  WebPAnimDecoderOptions options;
  if (WebPAnimDecoderOptionsInit(&options) == 0) {
    return internal_error(prefixed(name, "libwebpdemux version mismatch"));
  }
  options.color_mode = MODE_RGBA;
  options.use_threads = 0;
  const WebPData data{bytes.data(), bytes.size()};
  std::unique_ptr<WebPAnimDecoder, AnimDecoderDeleter> decoder(WebPAnimDecoderNew(&data, &options));
  if (!decoder) return corrupt_data(prefixed(name, "corrupt animated WebP"));
  WebPAnimInfo info;
  if (WebPAnimDecoderGetInfo(decoder.get(), &info) == 0 ||
      static_cast<int>(info.canvas_width) != image.width ||
      static_cast<int>(info.canvas_height) != image.height) {
    return corrupt_data(prefixed(name, "corrupt animated WebP (inconsistent canvas)"));
  }
  std::uint8_t* rgba = nullptr;
  int timestamp = 0;
  if (WebPAnimDecoderGetNext(decoder.get(), &rgba, &timestamp) == 0 || rgba == nullptr) {
    return corrupt_data(prefixed(name, "corrupt animated WebP (first frame)"));
  }
  image.pixels.resize(image.pixel_count() * 3);
  std::uint8_t* out = image.pixels.data();
  const std::size_t count = image.pixel_count();
  for (std::size_t i = 0; i < count; ++i, rgba += 4, out += 3) {
    out[0] = rgba[0];
    out[1] = rgba[1];
    out[2] = rgba[2];
  }
  return Status::Ok();
}

}  // namespace

Result<DecodedImage> decode_webp(std::span<const std::uint8_t> bytes, std::string_view name,
                                 const DecodeOptions& options) {
  WebPDecoderConfig config;
  if (WebPInitDecoderConfig(&config) == 0) {
    return internal_error(prefixed(name, "libwebp version mismatch"));
  }
  VP8StatusCode status = WebPGetFeatures(bytes.data(), bytes.size(), &config.input);
  if (status != VP8_STATUS_OK) return webp_error(name, status);
  SEGMENTOR_RETURN_IF_ERROR(
      check_dimensions(config.input.width, config.input.height, name, "WebP", options));

  DecodedImage out;
  out.image.width = config.input.width;
  out.image.height = config.input.height;
  if (config.input.has_animation != 0) {
    SEGMENTOR_RETURN_IF_ERROR(decode_first_frame(bytes, name, out.image));
  } else {
    out.image.pixels.resize(out.image.pixel_count() * 3);
    // Decode straight into our buffer; the alpha channel, if any, is dropped by asking for RGB.
    config.output.colorspace = MODE_RGB;
    config.output.is_external_memory = 1;
    config.output.u.RGBA.rgba = out.image.pixels.data();
    config.output.u.RGBA.stride = out.image.width * 3;
    config.output.u.RGBA.size = out.image.pixels.size();
    status = WebPDecode(bytes.data(), bytes.size(), &config);
    WebPFreeDecBuffer(&config.output);  // frees nothing we own; required by the API
    if (status != VP8_STATUS_OK) return webp_error(name, status);
  }
  out.exif = read_exif_chunk(bytes);
  return out;
}

}  // namespace segmentor::imaging_internal
