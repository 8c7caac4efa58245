// libFuzzer target: untrusted bytes through the JPEG, PNG and WebP decoders (format sniffed from
// the bytes, as decode_image_file does), EXIF orientation included (scripts/fuzz.sh). The pixel
// cap is small so a fuzzed header cannot make the fuzzer itself run out of memory.
#include <cstddef>
#include <cstdint>
#include <span>

#include "imaging/decode.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  segmentor::DecodeOptions options;
  options.max_pixels = 4'000'000;
  (void)segmentor::decode_image_bytes(std::span<const std::uint8_t>(data, size), "fuzz", options);
  return 0;
}
