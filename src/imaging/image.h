// Plain CPU image types shared by every subsystem. No library headers here on purpose: the
// pipeline, the models and the tests all pass these around.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace segmentor {

// 8-bit RGB, row-major, interleaved (R,G,B per pixel), no padding between rows.
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> pixels;  // width * height * 3

  std::size_t pixel_count() const {
    return static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
  }
};

// A binary mask: one byte per pixel, exactly 0 or 255 (255 = kept). Row-major.
struct Mask {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> values;  // width * height

  static Mask zeros(int width, int height) {
    return {width, height,
            std::vector<std::uint8_t>(static_cast<std::size_t>(width) *
                                      static_cast<std::size_t>(height), 0)};
  }
  std::size_t pixel_count() const {
    return static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
  }
  bool any() const {
    for (auto v : values) {
      if (v != 0) return true;
    }
    return false;
  }
};

}  // namespace segmentor
