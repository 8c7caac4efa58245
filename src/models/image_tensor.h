// Pre- and post-processing on the model's device: image -> network input, probability map ->
// source-sized mask. Internal to segmentor_models (LibTorch types in the signatures).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "imaging/image.h"
#include "models/manifest.h"

namespace segmentor {

// How a source image sits inside the network input. For `stretch` the resized size is the input
// size and there is no padding; for `letterbox` the image keeps its aspect ratio and is centred.
struct LetterboxGeometry {
  int input_width = 0;
  int input_height = 0;
  int resized_width = 0;   // the source's size inside the input, before padding
  int resized_height = 0;
  int pad_x = 0;           // left padding (the right gets the rest)
  int pad_y = 0;           // top padding
  double scale = 1.0;      // resized / source, the smaller of the two ratios (letterbox)
};

LetterboxGeometry stretch_geometry(int input_width, int input_height);
// scale = min(in_w/src_w, in_h/src_h); resized = round(src * scale), at least 1; padding split
// evenly with the odd pixel on the right / bottom.
LetterboxGeometry letterbox_geometry(int source_width, int source_height, int input_width,
                                     int input_height);
LetterboxGeometry geometry_for(const ModelManifest& manifest, int source_width, int source_height);

// Note [One upload per task]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~
// Every model of a task starts from the same frame: an FHD frame is 6 MB of pageable memory to
// copy to the card, and the foreground model, the person detector and the people model each used
// to copy it again. Inside a TaskScope (common/task_scope.h; the Segmenter opens one per task) the
// first model's upload is kept, per thread, and the task's other models on that thread start from
// it; the scope's end drops it, so nothing outlives the task (its bytes are part of what
// calibration measures for a task). The key is the scope's task id plus the pixels' address, size
// and the device, so a different frame, or a later task whose frame happens to sit at the same
// address, uploads its own. The upload is synchronous (pageable source), so a model on another
// stream reads finished data.

// The network input for `image`: [1,3,H,W] (nchw) or [1,H,W,3] (nhwc), contiguous, on `device`,
// in `dtype`. Upload as uint8 (once per task: Note [One upload per task]), then resize (bilinear,
// align_corners=false) and pad in byte units, then reorder channels (channel_order), scale and
// normalise in float32, then cast.
at::Tensor make_input(const RgbImage& image, const ModelManifest& manifest,
                         const LetterboxGeometry& geometry, const c10::Device& device,
                         at::ScalarType dtype);

// Uploads made by make_input in this process (shared ones not counted again): for tests.
std::uint64_t image_uploads();

// Resamples maps [1,C,h,w] (float, any device) that cover the whole network input to the source
// size, dropping the letterbox padding: source pixel x samples the map at input coordinate
// pad_x + (x + 0.5) * resized_width / source_width (bilinear, edge-clamped), which is exactly
// "crop the unpadded region, then resize with align_corners=false".
// Returns [1,C,source_h,source_w].
at::Tensor resample_to_source(const at::Tensor& maps, const LetterboxGeometry& geometry,
                                 int source_width, int source_height);

// p >= threshold -> 255 else 0, for a [H,W] (or [1,1,H,W]) float map, copied to a CPU Mask.
Mask threshold_to_mask(const at::Tensor& probability, double threshold);

}  // namespace segmentor
