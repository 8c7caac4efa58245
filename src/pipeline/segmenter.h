// Turns one decoded image into its three masks: foreground, people, product.
#pragma once

#include "common/status.h"
#include "imaging/image.h"
#include "models/mask_model.h"

namespace segmentor {

struct AssetMasks {
  Mask foreground;
  Mask people;  // all zero when nobody was found
  bool people_found = false;
  Mask product;  // foreground AND NOT people
};

// Runs the foreground model, then the people model (if any), and combines them.
// Does not own the models. Thread-compatible: one Segmenter per lane, like its models.
class Segmenter {
 public:
  // `people` may be null: then no people mask is made and product = foreground.
  Segmenter(MaskModel& foreground, MaskModel* people) : foreground_(foreground), people_(people) {}

  // Model errors come back unchanged (an out-of-memory stays kOutOfMemory for the recovery ladder).
  Result<AssetMasks> segment(const RgbImage& image);

  MaskModel& foreground_model() { return foreground_; }
  MaskModel* people_model() { return people_; }

 private:
  MaskModel& foreground_;
  MaskModel* people_;
};

}  // namespace segmentor
