// libFuzzer target: an untrusted .env file through the .env parser (scripts/fuzz.sh).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)segmentor::parse_dotenv(text, "fuzz.env");
  return 0;
}
