// A plain double-precision reference of PyTorch's bilinear resize (align_corners=false), for
// computing the exact masks the model tests expect and which pixels are genuinely ambiguous.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include <gtest/gtest.h>

#include "imaging/image.h"

namespace segmentor::test {

using Grid = std::vector<std::vector<double>>;  // [y][x]

inline Grid make_grid(int width, int height, double value = 0.0) {
  return Grid(static_cast<std::size_t>(height),
              std::vector<double>(static_cast<std::size_t>(width), value));
}

inline double& cell(Grid& g, int x, int y) {
  return g[static_cast<std::size_t>(y)][static_cast<std::size_t>(x)];
}
inline double cell(const Grid& g, int x, int y) {
  return g[static_cast<std::size_t>(y)][static_cast<std::size_t>(x)];
}

// Sampling positions of interpolate(mode=bilinear, align_corners=false) along one axis.
struct Tap {
  int lo, hi;
  double w;  // weight of hi
};
inline std::vector<Tap> bilinear_taps(int in_size, int out_size) {
  std::vector<Tap> out;
  for (int i = 0; i < out_size; ++i) {
    const double src = std::max(0.0, (i + 0.5) * in_size / out_size - 0.5);
    const int lo = std::min(static_cast<int>(src), in_size - 1);
    out.push_back({lo, std::min(lo + 1, in_size - 1), src - lo});
  }
  return out;
}

inline Grid bilinear_resize(const Grid& in, int out_w, int out_h) {
  const auto tx = bilinear_taps(static_cast<int>(in[0].size()), out_w);
  const auto ty = bilinear_taps(static_cast<int>(in.size()), out_h);
  Grid out = make_grid(out_w, out_h);
  for (int y = 0; y < out_h; ++y) {
    for (int x = 0; x < out_w; ++x) {
      const Tap& a = ty[static_cast<std::size_t>(y)];
      const Tap& b = tx[static_cast<std::size_t>(x)];
      const double top = (1 - b.w) * cell(in, b.lo, a.lo) + b.w * cell(in, b.hi, a.lo);
      const double bottom = (1 - b.w) * cell(in, b.lo, a.hi) + b.w * cell(in, b.hi, a.hi);
      cell(out, x, y) = (1 - a.w) * top + a.w * bottom;
    }
  }
  return out;
}

inline Grid crop(const Grid& in, int x0, int y0, int width, int height) {
  Grid out = make_grid(width, height);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) cell(out, x, y) = cell(in, x0 + x, y0 + y);
  }
  return out;
}

enum class Expect { kZero, kFull, kEither };

// Per pixel: kFull when even the lower bound is >= threshold + eps, kZero when even the upper bound
// is < threshold - eps, else kEither (rounding may go either way).
inline std::vector<Expect> classify(const Grid& lower, const Grid& upper, double threshold,
                                    double eps) {
  std::vector<Expect> out;
  for (std::size_t y = 0; y < lower.size(); ++y) {
    for (std::size_t x = 0; x < lower[y].size(); ++x) {
      out.push_back(lower[y][x] >= threshold + eps ? Expect::kFull
                    : upper[y][x] < threshold - eps ? Expect::kZero
                                                    : Expect::kEither);
    }
  }
  return out;
}

// Checks `mask` against `expect`; returns how many pixels were kEither.
inline int expect_matches(const Mask& mask, const std::vector<Expect>& expect) {
  EXPECT_EQ(mask.values.size(), expect.size());
  int either = 0, wrong = 0;
  for (std::size_t i = 0; i < expect.size() && i < mask.values.size(); ++i) {
    EXPECT_TRUE(mask.values[i] == 0 || mask.values[i] == 255);
    if (expect[i] == Expect::kEither) {
      ++either;
      continue;
    }
    const std::uint8_t want = expect[i] == Expect::kFull ? 255 : 0;
    if (mask.values[i] != want && ++wrong <= 5) {
      ADD_FAILURE() << "pixel (" << i % static_cast<std::size_t>(mask.width) << ","
                    << i / static_cast<std::size_t>(mask.width) << ") is "
                    << int{mask.values[i]} << ", expected " << int{want};
    }
  }
  EXPECT_EQ(wrong, 0);
  return either;
}

inline int count_full(const std::vector<Expect>& expect) {
  return static_cast<int>(std::count(expect.begin(), expect.end(), Expect::kFull));
}

// Pixels of `mask` that contradict a definite (kZero / kFull) expectation; no test failure.
inline int count_mismatches(const Mask& mask, const std::vector<Expect>& expect) {
  int wrong = 0;
  for (std::size_t i = 0; i < expect.size() && i < mask.values.size(); ++i) {
    if (expect[i] == Expect::kEither) continue;
    wrong += mask.values[i] != (expect[i] == Expect::kFull ? 255 : 0);
  }
  return wrong;
}

// The expected YOLO-seg mask of one instance whose map (map_w x map_h, covering the whole network
// input) is `value` on the cells [c0,c1) x [r0,r1) and 0 elsewhere: crop the map to the unpadded
// region (pad and resized size in input pixels; must fall on whole map cells), resize to the
// source, keep >= threshold.
struct LetterboxedMap {
  int map_w, map_h;      // prototype grid
  int input_w, input_h;  // network input
  int pad_x, pad_y, resized_w, resized_h;
};
inline std::vector<Expect> box_mask_reference(const LetterboxedMap& m, int c0, int r0, int c1,
                                              int r1, double value, int source_w, int source_h,
                                              double threshold = 0.5) {
  Grid g = make_grid(m.map_w, m.map_h);
  for (int y = r0; y < r1; ++y) {
    for (int x = c0; x < c1; ++x) cell(g, x, y) = value;
  }
  EXPECT_EQ(m.pad_x * m.map_w % m.input_w, 0) << "crop must fall on whole cells";
  EXPECT_EQ(m.pad_y * m.map_h % m.input_h, 0) << "crop must fall on whole cells";
  EXPECT_EQ(m.resized_w * m.map_w % m.input_w, 0) << "crop must fall on whole cells";
  EXPECT_EQ(m.resized_h * m.map_h % m.input_h, 0) << "crop must fall on whole cells";
  const Grid cropped = crop(g, m.pad_x * m.map_w / m.input_w, m.pad_y * m.map_h / m.input_h,
                            m.resized_w * m.map_w / m.input_w, m.resized_h * m.map_h / m.input_h);
  const Grid resized = bilinear_resize(cropped, source_w, source_h);
  return classify(resized, resized, threshold, 1e-4);
}

}  // namespace segmentor::test
