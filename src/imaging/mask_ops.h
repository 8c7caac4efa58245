// Mask arithmetic used when combining model outputs (product = foreground minus people) and to
// compare masks in tests and tools.
//
// Thread-safety: stateless functions, callable from any thread.
#pragma once

#include "common/status.h"
#include "imaging/image.h"

namespace segmentor {

// foreground AND NOT people, as a 0/255 mask. Any non-zero input value counts as set.
// kInvalidArgument when the sizes differ or a buffer has the wrong length.
Result<Mask> subtract_mask(const Mask& foreground, const Mask& people);

// a AND b, as a 0/255 mask (the people mask inside the person boxes). Errors as subtract_mask.
Result<Mask> intersect_mask(const Mask& a, const Mask& b);

// Intersection over union of the non-zero pixels. 1.0 when both masks are empty (they agree);
// 0.0 when the sizes differ or a buffer has the wrong length (they cannot agree).
double mask_iou(const Mask& a, const Mask& b);

}  // namespace segmentor
