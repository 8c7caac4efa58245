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

// Note [People are decided by a detector]
// A person-mask model such as MediaPipe selfie assumes a person is in the frame: on a product
// photo it marks the product itself, and product = foreground - people then loses the product.
// So where a person detector is given, it decides where people are: its "mask" is the union of
// its confident person boxes (each grown by a margin), and the people mask is the mask model's
// mask inside those boxes only. No confident person -> no people mask, product = foreground, and
// the mask model is not run at all (most product photos: one small detector pass instead of the
// mask model). A YOLO-seg people model scores its own instances and gets no detector.

// Runs the foreground model, then the people stage (detector, then the people model), and
// combines them. Does not own the models. Thread-compatible: one Segmenter per lane, like its
// models.
class Segmenter {
 public:
  // `people` may be null: then no people mask is made and product = foreground. `detector` may be
  // null: then the people model alone decides (Note [People are decided by a detector]); it is
  // ignored for a yolo_seg people model.
  Segmenter(MaskModel& foreground, MaskModel* people, MaskModel* detector = nullptr)
      : foreground_(foreground),
        people_(people),
        detector_(people != nullptr && people->info().kind != ModelKind::kYoloSeg ? detector
                                                                                  : nullptr) {}

  // Model errors come back unchanged (an out-of-memory stays kOutOfMemory for the recovery ladder).
  Result<AssetMasks> segment(const RgbImage& image);

  // Calibration measures the worst case: the people model runs even where the detector finds
  // nobody (its mask is still gated by the boxes, so the result does not change).
  void set_always_run_people(bool on) { always_run_people_ = on; }

  MaskModel& foreground_model() { return foreground_; }
  MaskModel* people_model() { return people_; }
  MaskModel* person_detector() { return detector_; }

 private:
  MaskModel& foreground_;
  MaskModel* people_;
  MaskModel* detector_;
  bool always_run_people_ = false;
};

}  // namespace segmentor
