#include "models/person_detector_decode.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace segmentor {

namespace {

std::string shape_of(const at::Tensor& t) {
  std::string out = "[";
  for (std::int64_t i = 0; i < t.dim(); ++i) {
    if (i > 0) out += ",";
    out += std::to_string(t.size(i));
  }
  return out + "]";
}

std::int64_t cells_along(int size, int stride) { return (size + stride - 1) / stride; }

}  // namespace

Result<std::vector<YoloDetection>> decode_person_detections(const std::vector<at::Tensor>& outputs,
                                                            int input_width, int input_height,
                                                            const DetectorDecodeOptions& options) {
  const std::size_t levels = options.strides.size();
  if (outputs.size() != 2 * levels) {
    return internal_error("person detector returned " + std::to_string(outputs.size()) +
                          " tensors, expected " + std::to_string(2 * levels) +
                          " (scores and box bins for each of " + std::to_string(levels) +
                          " strides)");
  }
  std::vector<YoloDetection> candidates;
  std::int64_t anchor_base = 0;
  for (std::size_t level = 0; level < levels; ++level) {
    const int stride = options.strides[level];
    const std::int64_t cols = cells_along(input_width, stride);
    const std::int64_t cells = cols * cells_along(input_height, stride);
    const at::Tensor& scores = outputs[2 * level];
    const at::Tensor& bins = outputs[2 * level + 1];
    if (scores.dim() != 3 || scores.size(0) != 1 || scores.size(1) != cells ||
        scores.size(2) != options.num_classes || bins.dim() != 3 || bins.size(0) != 1 ||
        bins.size(1) != cells || bins.size(2) != 4 * options.reg_bins) {
      return internal_error("person detector stride " + std::to_string(stride) + ": outputs " +
                            shape_of(scores) + " and " + shape_of(bins) + ", expected [1," +
                            std::to_string(cells) + "," + std::to_string(options.num_classes) +
                            "] and [1," + std::to_string(cells) + "," +
                            std::to_string(4 * options.reg_bins) + "]");
    }
    const at::Tensor person = scores[0].select(1, options.person_class).to(at::kFloat);
    const at::Tensor hits = person.ge(options.min_score).nonzero().view({-1});
    if (hits.numel() == 0) {
      anchor_base += cells;
      continue;
    }
    // Only the candidate cells are decoded, on their device, then copied to the host.
    const at::Tensor logits =
        bins[0].index_select(0, hits).to(at::kFloat).view({-1, 4, options.reg_bins});
    const at::Tensor steps = at::arange(options.reg_bins, logits.options());
    const at::Tensor distances =
        (logits.softmax(2) * steps).sum(2).mul(static_cast<double>(stride)).to(at::kCPU);
    const at::Tensor cell_ids = hits.to(at::kCPU).to(at::kLong);
    const at::Tensor cell_scores = person.index_select(0, hits).to(at::kCPU);
    const auto d = distances.accessor<float, 2>();
    const auto ids = cell_ids.accessor<std::int64_t, 1>();
    const auto s = cell_scores.accessor<float, 1>();
    for (std::int64_t k = 0; k < cell_ids.size(0); ++k) {
      const float cx = (static_cast<float>(ids[k] % cols) + 0.5f) * static_cast<float>(stride);
      const float cy = (static_cast<float>(ids[k] / cols) + 0.5f) * static_cast<float>(stride);
      YoloDetection box;
      box.x1 = std::clamp(cx - d[k][0], 0.0f, static_cast<float>(input_width));
      box.y1 = std::clamp(cy - d[k][1], 0.0f, static_cast<float>(input_height));
      box.x2 = std::clamp(cx + d[k][2], 0.0f, static_cast<float>(input_width));
      box.y2 = std::clamp(cy + d[k][3], 0.0f, static_cast<float>(input_height));
      box.score = s[k];
      box.anchor = anchor_base + ids[k];
      candidates.push_back(box);
    }
    anchor_base += cells;
  }
  return non_max_suppression(std::move(candidates), options.iou_threshold, options.max_detections);
}

Mask person_box_mask(const std::vector<YoloDetection>& boxes, const LetterboxGeometry& geometry,
                     int source_width, int source_height, double margin) {
  Mask mask = Mask::zeros(source_width, source_height);
  // Input pixel u maps to source x = (u - pad_x) * source_width / resized_width.
  const double sx = static_cast<double>(source_width) / std::max(1, geometry.resized_width);
  const double sy = static_cast<double>(source_height) / std::max(1, geometry.resized_height);
  for (const YoloDetection& box : boxes) {
    const double grow_x = margin * (box.x2 - box.x1);
    const double grow_y = margin * (box.y2 - box.y1);
    const double x1 = (box.x1 - grow_x - geometry.pad_x) * sx;
    const double x2 = (box.x2 + grow_x - geometry.pad_x) * sx;
    const double y1 = (box.y1 - grow_y - geometry.pad_y) * sy;
    const double y2 = (box.y2 + grow_y - geometry.pad_y) * sy;
    // Pixels whose centre (x + 0.5) lies in [x1, x2).
    const int c0 = std::clamp(static_cast<int>(std::ceil(x1 - 0.5)), 0, source_width);
    const int c1 = std::clamp(static_cast<int>(std::ceil(x2 - 0.5)), 0, source_width);
    const int r0 = std::clamp(static_cast<int>(std::ceil(y1 - 0.5)), 0, source_height);
    const int r1 = std::clamp(static_cast<int>(std::ceil(y2 - 0.5)), 0, source_height);
    for (int y = r0; y < r1; ++y) {
      std::fill(mask.values.begin() + static_cast<std::ptrdiff_t>(y) * source_width + c0,
                mask.values.begin() + static_cast<std::ptrdiff_t>(y) * source_width + c1, 255);
    }
  }
  return mask;
}

}  // namespace segmentor
