#include "bench/bench_plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "imaging/png_encode.h"

namespace segmentor {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr int kMarginLeft = 60;
constexpr int kMarginRight = 20;
constexpr int kMarginTop = 20;
constexpr int kMarginBottom = 40;

// A 3×5 pixel font for axis numbers: each glyph is 5 rows of 3 bits (MSB = left column).
struct Glyph {
  char c;
  std::array<std::uint8_t, 5> rows;
};
constexpr std::array<Glyph, 16> kFont = {{
    {'0', {7, 5, 5, 5, 7}},
    {'1', {2, 6, 2, 2, 7}},
    {'2', {7, 1, 7, 4, 7}},
    {'3', {7, 1, 7, 1, 7}},
    {'4', {5, 5, 7, 1, 1}},
    {'5', {7, 4, 7, 1, 7}},
    {'6', {7, 4, 7, 5, 7}},
    {'7', {7, 1, 1, 1, 1}},
    {'8', {7, 5, 7, 5, 7}},
    {'9', {7, 5, 7, 1, 7}},
    {'.', {0, 0, 0, 0, 2}},
    {'s', {0, 3, 6, 1, 6}},
    {'G', {7, 4, 5, 5, 7}},
    {'i', {2, 0, 2, 2, 2}},
    {'B', {6, 5, 6, 5, 6}},
    {' ', {0, 0, 0, 0, 0}},
}};

class Canvas {
 public:
  Canvas(int width, int height) : image_{width, height, {}} {
    image_.pixels.assign(image_.pixel_count() * 3, 255);
  }

  void set(int x, int y, const std::uint8_t* rgb) {
    if (x < 0 || y < 0 || x >= image_.width || y >= image_.height) return;
    auto* p = &image_.pixels[(static_cast<std::size_t>(y) * image_.width + x) * 3];
    p[0] = rgb[0];
    p[1] = rgb[1];
    p[2] = rgb[2];
  }

  // Bresenham, `thickness` pixels wide (vertically), optionally dashed.
  void line(int x0, int y0, int x1, int y1, const std::uint8_t* rgb, int thickness = 1,
            int dash = 0) {
    const int dx = std::abs(x1 - x0);
    const int dy = -std::abs(y1 - y0);
    const int sx = x0 < x1 ? 1 : -1;
    const int sy = y0 < y1 ? 1 : -1;
    int error = dx + dy;
    for (int step = 0;; ++step) {
      if (dash == 0 || (step / dash) % 2 == 0) {
        for (int t = 0; t < thickness; ++t) set(x0, y0 + t, rgb);
      }
      if (x0 == x1 && y0 == y1) break;
      const int e2 = 2 * error;
      if (e2 >= dy) {
        error += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        error += dx;
        y0 += sy;
      }
    }
  }

  // Text in the 3×5 font scaled by 2; unknown characters are skipped.
  void text(int x, int y, const std::string& s, const std::uint8_t* rgb) {
    constexpr int kScale = 2;
    for (const char c : s) {
      const auto* glyph =
          std::find_if(kFont.begin(), kFont.end(), [c](const Glyph& g) { return g.c == c; });
      if (glyph != kFont.end()) {
        for (int row = 0; row < 5; ++row) {
          for (int col = 0; col < 3; ++col) {
            if ((glyph->rows[static_cast<std::size_t>(row)] >> (2 - col) & 1) == 0) continue;
            for (int a = 0; a < kScale; ++a) {
              for (int b = 0; b < kScale; ++b) set(x + col * kScale + a, y + row * kScale + b, rgb);
            }
          }
        }
      }
      x += 4 * kScale;
    }
  }

  const RgbImage& image() const { return image_; }

 private:
  RgbImage image_;
};

std::string number(double value, const char* suffix) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), value < 10 ? "%.1f%s" : "%.0f%s", value, suffix);
  return buffer;
}

}  // namespace

Result<std::vector<std::uint8_t>> plot_memory_png(const std::vector<MemorySample>& samples,
                                                  const PlotOptions& options) {
  if (options.width < 200 || options.height < 120) {
    return invalid_argument("plot: size must be at least 200x120");
  }
  Canvas canvas(options.width, options.height);
  const int left = kMarginLeft;
  const int right = options.width - kMarginRight;
  const int top = kMarginTop;
  const int bottom = options.height - kMarginBottom;

  double t_max = 0;
  std::int64_t y_max = options.cap_bytes;
  for (const MemorySample& s : samples) {
    t_max = std::max(t_max, s.t_seconds);
    y_max = std::max({y_max, s.reserved_bytes, s.allocated_bytes, s.gate_limit_bytes});
  }
  if (t_max <= 0) t_max = 1;
  const double y_top = std::max(1.0, static_cast<double>(y_max) * 1.05);
  auto px = [&](double t) {
    return left + static_cast<int>(std::lround((right - left) * t / t_max));
  };
  auto py = [&](double bytes) {
    return bottom - static_cast<int>(std::lround((bottom - top) * bytes / y_top));
  };

  constexpr std::uint8_t kGrid[3] = {225, 225, 225};
  constexpr std::uint8_t kAxis[3] = {40, 40, 40};
  for (int i = 1; i <= 4; ++i) {
    const int y = bottom - (bottom - top) * i / 4;
    canvas.line(left, y, right, y, kGrid);
    canvas.text(4, y - 5, number(y_top / kGiB * i / 4, "G"), kAxis);
    const int x = left + (right - left) * i / 4;
    canvas.line(x, top, x, bottom, kGrid);
    canvas.text(x - 16, bottom + 8, number(t_max * i / 4, "s"), kAxis);
  }
  canvas.line(left, top, left, bottom, kAxis);
  canvas.line(left, bottom, right, bottom, kAxis);
  canvas.text(4, bottom + 8, "0", kAxis);
  canvas.text(left, bottom + 24, "GiB s", kAxis);

  if (options.cap_bytes > 0) {
    const int y = py(static_cast<double>(options.cap_bytes));
    canvas.line(left, y, right, y, PlotColours::kCap, 1, 6);
  }
  auto series = [&](auto value, const std::uint8_t* rgb, int thickness) {
    for (std::size_t i = 1; i < samples.size(); ++i) {
      canvas.line(px(samples[i - 1].t_seconds), py(static_cast<double>(value(samples[i - 1]))),
                  px(samples[i].t_seconds), py(static_cast<double>(value(samples[i]))), rgb,
                  thickness);
    }
  };
  series([](const MemorySample& s) { return s.allocated_bytes; }, PlotColours::kAllocated, 1);
  series([](const MemorySample& s) { return s.gate_limit_bytes; }, PlotColours::kGateLimit, 2);
  series([](const MemorySample& s) { return s.reserved_bytes; }, PlotColours::kReserved, 2);

  const RgbImage& image = canvas.image();
  const Mask opaque{image.width, image.height, std::vector<std::uint8_t>(image.pixel_count(), 255)};
  return encode_rgba_png(image, opaque);
}

}  // namespace segmentor
