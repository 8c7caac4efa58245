// Decoding YOLO-seg outputs (YOLOv8 / YOLO11 "-seg" heads) into one person mask. Separate from
// the model so it can be unit-tested with hand-built tensors. Internal to segmentor_models.
#pragma once

#include <vector>

#include <ATen/ATen.h>

#include "common/status.h"
#include "imaging/image.h"
#include "models/image_tensor.h"

namespace segmentor {

struct YoloDecodeOptions {
  int num_classes = 80;
  int person_class = 0;
  double conf_threshold = 0.5;  // a box is a person when its best class is person_class, score >=
  double iou_threshold = 0.7;   // NMS drops a box whose IoU with a kept, higher-scoring one is >
  double mask_threshold = 0.5;  // instance mask pixel kept when its probability is >=
  int max_detections = 300;     // kept after NMS, highest scores first (as ultralytics)
};

// A box in network-input pixels, corners, with its score and its column in the predictions.
struct YoloDetection {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float score = 0;
  std::int64_t anchor = 0;
};

float box_iou(const YoloDetection& a, const YoloDetection& b);

// Greedy NMS: highest score first (ties: lower anchor first); a box is dropped when its IoU with an
// already kept box is > iou_threshold. Returns the kept boxes, best first, at most max_detections.
std::vector<YoloDetection> non_max_suppression(std::vector<YoloDetection> boxes,
                                               double iou_threshold, int max_detections);

// The person boxes of predictions [1, 4+nc+32, N] that pass the score filter and NMS.
// kInternal when the shape does not match options.num_classes.
Result<std::vector<YoloDetection>> decode_person_boxes(const at::Tensor& predictions,
                                                       const YoloDecodeOptions& options);

// The OR of every kept person's mask, at the source size: for each instance,
// sigmoid(coefficients . prototypes), zeroed outside its box (prototype pixels whose centres lie in
// the box scaled to prototype coordinates), resampled to the source with the letterbox padding
// removed (resample_to_source), thresholded at mask_threshold. No person -> all zeros.
// prototypes: [1, 32, ph, pw]. Tensors may be on any device, in any floating dtype. Shape problems
// are kInternal; LibTorch failures (e.g. out of memory) throw and are the caller's to classify.
Result<Mask> decode_yolo_seg(const at::Tensor& predictions, const at::Tensor& prototypes,
                             const LetterboxGeometry& geometry, int source_width,
                             int source_height, const YoloDecodeOptions& options);

}  // namespace segmentor
