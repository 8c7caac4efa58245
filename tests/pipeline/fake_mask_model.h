// A MaskModel that returns a preset mask (or error), for pipeline tests without LibTorch.
#pragma once

#include <algorithm>
#include <utility>

#include "models/mask_model.h"

namespace segmentor::testing {

class FakeMaskModel : public MaskModel {
 public:
  explicit FakeMaskModel(Result<Mask> answer, std::string name = "fake")
      : answer_(std::move(answer)) {
    info_.name = std::move(name);
    info_.device = "cpu";
  }
  const ModelInfo& info() const override { return info_; }
  void set_kind(ModelKind kind) { info_.kind = kind; }
  Result<Mask> segment(const RgbImage& /*image*/) override {
    ++calls;
    return answer_;
  }
  // Batching as a plain number: what loading allowed, lowered by limit_batch().
  int max_batch() const override { return max_batch_; }
  void limit_batch(int max_batch) override { max_batch_ = std::min(max_batch_, max_batch); }
  void set_max_batch(int max_batch) { max_batch_ = max_batch; }
  int calls = 0;

 private:
  Result<Mask> answer_;
  ModelInfo info_;
  int max_batch_ = 1;
};

// A mask of `w`x`h` with the rectangle [x0,x1)x[y0,y1) set to 255.
inline Mask rect_mask(int w, int h, int x0, int y0, int x1, int y1) {
  Mask m = Mask::zeros(w, h);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) m.values[static_cast<std::size_t>(y * w + x)] = 255;
  }
  return m;
}

inline RgbImage gray_image(int w, int h) {
  return {w, h, std::vector<std::uint8_t>(static_cast<std::size_t>(w * h * 3), 128)};
}

}  // namespace segmentor::testing
