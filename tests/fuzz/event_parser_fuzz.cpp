// libFuzzer target: an untrusted message body through the event parsers (scripts/fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "messaging/events.h"
#include "messaging/wire_format.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace segmentor::messaging;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto parsed = parse_json_body(body);
  if (!parsed.ok()) return 0;
  (void)parse_product_image_ready(*parsed);
  (void)parse_product_images_batch(*parsed);
  (void)parse_video_keyframes_ready(*parsed);
  (void)parse_video_keyframes_batch(*parsed);
  (void)resolve_correlation_id("", &*parsed);
  return 0;
}
