// Decoding a NanoDet-style person detector (GFL head: per-stride class scores and per-side
// distance distributions) into person boxes, and those boxes into the people stage's box mask.
// Separate from the model so it can be unit-tested with hand-built tensors. Internal to
// segmentor_models.
#pragma once

#include <ATen/ATen.h>

#include <vector>

#include "common/status.h"
#include "imaging/image.h"
#include "models/image_tensor.h"
#include "models/yolo_seg_decode.h"

namespace segmentor {

struct DetectorDecodeOptions {
  int num_classes = 80;
  int person_class = 0;
  std::vector<int> strides = {8, 16, 32};
  int reg_bins = 11;           // distance bins per side (NanoDet: reg_max + 1)
  double min_score = 0.5;      // a cell is a person when its person score is >= (PERSON_MIN_SCORE)
  double iou_threshold = 0.6;  // NMS drops a box whose IoU with a kept, higher one is >
  double box_margin = 0.1;     // each side of a kept box moves out by this x its width/height
  int max_detections = 100;
};

// Note [Person detector decode]
// For each stride s the network sees a grid of ceil(H/s) x ceil(W/s) cells, row-major; cell
// (i, j) has its centre at ((j + 0.5) s, (i + 0.5) s) in input pixels (NanoDet's own decoder).
// Its box distributions hold, per side (left, top, right, bottom), reg_bins logits; the side's
// distance is the expectation sum_k k * softmax(logits)_k, in units of the stride. The box is
// (cx - l, cy - t, cx + r, cy + b), clipped to the input. A cell is a person candidate when its
// person score (already a sigmoid) is >= min_score, whatever the other classes score: a person
// holding a cup is still a person, unlike YOLO-seg's best-class rule (Note [Which boxes are
// people]), and the people stage only asks where people are. NMS runs over the candidates.

// The person boxes in network-input pixels, best first, after NMS. `outputs` are the model's
// tensors: for each stride in order, scores [1, N, num_classes] then distributions
// [1, N, 4 * reg_bins]. Shape problems are kInternal; LibTorch failures throw.
Result<std::vector<YoloDetection>> decode_person_detections(const std::vector<at::Tensor>& outputs,
                                                            int input_width, int input_height,
                                                            const DetectorDecodeOptions& options);

// The union of `boxes` (input pixels) grown by `margin` x their size on each side, mapped back to
// the source through `geometry` (letterbox padding removed), as a 0/255 mask of the source size.
// A source pixel is inside when its centre is.
Mask person_box_mask(const std::vector<YoloDetection>& boxes, const LetterboxGeometry& geometry,
                     int source_width, int source_height, double margin);

}  // namespace segmentor
