#include "pipeline/segmenter.h"

#include <string>

#include "common/stage_times.h"
#include "common/task_scope.h"
#include "imaging/mask_ops.h"

namespace segmentor {

namespace {

Status check_size(const Mask& mask, const RgbImage& image, const MaskModel& model) {
  if (mask.width == image.width && mask.height == image.height &&
      mask.values.size() == image.pixel_count()) {
    return Status::Ok();
  }
  return internal_error("model '" + model.info().name + "' returned a " +
                        std::to_string(mask.width) + "x" + std::to_string(mask.height) +
                        " mask for a " + std::to_string(image.width) + "x" +
                        std::to_string(image.height) + " image");
}

}  // namespace

Result<AssetMasks> Segmenter::segment(const RgbImage& image) {
  TaskScope task;  // the models share one upload of `image` (Note [One upload per task])
  AssetMasks masks;
  SEGMENTOR_ASSIGN_OR_RETURN(masks.foreground, foreground_.segment(image));
  SEGMENTOR_RETURN_IF_ERROR(check_size(masks.foreground, image, foreground_));
  if (people_ != nullptr) {
    // Note [People are decided by a detector]
    Mask boxes;
    bool run_people = true;
    if (detector_ != nullptr) {
      SEGMENTOR_ASSIGN_OR_RETURN(boxes, detector_->segment(image));
      SEGMENTOR_RETURN_IF_ERROR(check_size(boxes, image, *detector_));
      run_people = always_run_people_ || boxes.any();
    }
    if (run_people) {
      SEGMENTOR_ASSIGN_OR_RETURN(masks.people, people_->segment(image));
      SEGMENTOR_RETURN_IF_ERROR(check_size(masks.people, image, *people_));
      if (detector_ != nullptr) {
        SEGMENTOR_ASSIGN_OR_RETURN(masks.people, intersect_mask(masks.people, boxes));
      }
      masks.people_found = masks.people.any();
    }
  }
  ScopedStage combining(Stage::kPostprocess);  // Note [Where the time goes]
  if (masks.people_found) {
    SEGMENTOR_ASSIGN_OR_RETURN(masks.product, subtract_mask(masks.foreground, masks.people));
  } else {
    masks.people = Mask::zeros(image.width, image.height);
    masks.product = masks.foreground;
  }
  return masks;
}

}  // namespace segmentor
