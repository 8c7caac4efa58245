#include "models/yolo_seg_decode.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace segmentor {

// Note [Which boxes are people]
// The Python service asked ultralytics for class 0 only. Ultralytics first gives each box its best
// class (argmax over the class scores, already sigmoid-ed by the head) and then filters by class,
// so a box that scores 0.6 for "person" but 0.9 for "bicycle" is not a person. We keep that rule:
// a box is a person when argmax == person_class and that score >= conf_threshold. NMS then runs
// over the person boxes only (class-aware NMS restricted to one class), suppressing IoU > threshold
// as torchvision.ops.nms does.

namespace {

constexpr std::int64_t kMaskCoefficients = 32;
// Instances resampled to the source size at once; bounds the temporary memory on large images.
constexpr std::int64_t kInstancesPerChunk = 8;

std::string shape_of(const at::Tensor& t) {
  std::string out = "[";
  for (std::int64_t i = 0; i < t.dim(); ++i) {
    if (i > 0) out += ",";
    out += std::to_string(t.size(i));
  }
  return out + "]";
}

}  // namespace

float box_iou(const YoloDetection& a, const YoloDetection& b) {
  const float iw = std::max(0.0f, std::min(a.x2, b.x2) - std::max(a.x1, b.x1));
  const float ih = std::max(0.0f, std::min(a.y2, b.y2) - std::max(a.y1, b.y1));
  const float inter = iw * ih;
  const float area_a = std::max(0.0f, a.x2 - a.x1) * std::max(0.0f, a.y2 - a.y1);
  const float area_b = std::max(0.0f, b.x2 - b.x1) * std::max(0.0f, b.y2 - b.y1);
  const float uni = area_a + area_b - inter;
  return uni > 0.0f ? inter / uni : 0.0f;
}

std::vector<YoloDetection> non_max_suppression(std::vector<YoloDetection> boxes,
                                               double iou_threshold, int max_detections) {
  std::sort(boxes.begin(), boxes.end(), [](const YoloDetection& a, const YoloDetection& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.anchor < b.anchor;
  });
  std::vector<YoloDetection> kept;
  for (const YoloDetection& candidate : boxes) {
    if (static_cast<int>(kept.size()) >= max_detections) break;
    bool suppressed = false;
    for (const YoloDetection& k : kept) {
      if (box_iou(candidate, k) > iou_threshold) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) kept.push_back(candidate);
  }
  return kept;
}

Result<std::vector<YoloDetection>> decode_person_boxes(const at::Tensor& predictions,
                                                       const YoloDecodeOptions& options) {
  const std::int64_t rows = 4 + options.num_classes + kMaskCoefficients;
  if (predictions.dim() != 3 || predictions.size(0) != 1 || predictions.size(1) != rows) {
    return internal_error("YOLO-seg predictions have shape " + shape_of(predictions) +
                          ", expected [1," + std::to_string(rows) + ",N] for " +
                          std::to_string(options.num_classes) + " classes");
  }
  at::Tensor p = predictions[0].to(at::kFloat);             // [rows, N]
  at::Tensor scores = p.slice(0, 4, 4 + options.num_classes);  // [nc, N]
  auto [best, best_class] = scores.max(0);
  at::Tensor is_person = best_class.eq(options.person_class).logical_and(
      best.ge(options.conf_threshold));
  at::Tensor anchors = is_person.nonzero().view({-1});
  // Only the few candidates travel to the CPU for NMS.
  at::Tensor boxes = p.slice(0, 0, 4).index_select(1, anchors).t().contiguous().to(at::kCPU);
  at::Tensor kept_scores = best.index_select(0, anchors).contiguous().to(at::kCPU);
  at::Tensor anchors_cpu = anchors.to(at::kCPU).contiguous();

  std::vector<YoloDetection> candidates;
  const auto n = anchors_cpu.size(0);
  candidates.reserve(static_cast<std::size_t>(n));
  const float* box = boxes.data_ptr<float>();
  const float* score = kept_scores.data_ptr<float>();
  const std::int64_t* anchor = anchors_cpu.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < n; ++i) {
    const float cx = box[i * 4], cy = box[i * 4 + 1], w = box[i * 4 + 2], h = box[i * 4 + 3];
    candidates.push_back({cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, score[i], anchor[i]});
  }
  return non_max_suppression(std::move(candidates), options.iou_threshold,
                             options.max_detections);
}

Result<Mask> decode_yolo_seg(const at::Tensor& predictions, const at::Tensor& prototypes,
                             const LetterboxGeometry& geometry, int source_width,
                             int source_height, const YoloDecodeOptions& options) {
  SEGMENTOR_ASSIGN_OR_RETURN(std::vector<YoloDetection> people,
                             decode_person_boxes(predictions, options));
  if (prototypes.dim() != 4 || prototypes.size(0) != 1 ||
      prototypes.size(1) != kMaskCoefficients) {
    return internal_error("YOLO-seg prototypes have shape " + shape_of(prototypes) +
                          ", expected [1,32,h,w]");
  }
  if (people.empty()) return Mask::zeros(source_width, source_height);

  const auto device = prototypes.device();
  const std::int64_t ph = prototypes.size(2);
  const std::int64_t pw = prototypes.size(3);
  at::Tensor protos = prototypes[0].to(at::kFloat).reshape({kMaskCoefficients, ph * pw});

  std::vector<std::int64_t> anchor_list;
  std::vector<float> box_list;  // x1, y1, x2, y2 in prototype pixels
  const double sx = static_cast<double>(pw) / geometry.input_width;
  const double sy = static_cast<double>(ph) / geometry.input_height;
  for (const YoloDetection& d : people) {
    anchor_list.push_back(d.anchor);
    box_list.insert(box_list.end(),
                    {static_cast<float>(d.x1 * sx), static_cast<float>(d.y1 * sy),
                     static_cast<float>(d.x2 * sx), static_cast<float>(d.y2 * sy)});
  }
  const auto k = static_cast<std::int64_t>(people.size());
  at::Tensor anchors = at::from_blob(anchor_list.data(), {k}, at::TensorOptions().dtype(at::kLong))
                           .to(device, false, true);
  at::Tensor proto_boxes =
      at::from_blob(box_list.data(), {k, 4}, at::TensorOptions().dtype(at::kFloat))
          .to(device, false, true);

  const std::int64_t first_coefficient = 4 + options.num_classes;
  at::Tensor coefficients = predictions[0]
                                .to(at::kFloat)
                                .slice(0, first_coefficient, first_coefficient + kMaskCoefficients)
                                .index_select(1, anchors)
                                .t();  // [k, 32]
  at::Tensor instance = coefficients.matmul(protos).sigmoid().view({k, ph, pw});

  // Zero everything outside each box: prototype pixel (r, c) stays when its centre is inside.
  auto float_options = at::TensorOptions().dtype(at::kFloat).device(device);
  at::Tensor cols = at::arange(pw, float_options).add(0.5).view({1, 1, pw});
  at::Tensor rows = at::arange(ph, float_options).add(0.5).view({1, ph, 1});
  auto edge = [&](std::int64_t i) { return proto_boxes.select(1, i).view({k, 1, 1}); };
  at::Tensor inside = cols.ge(edge(0)).logical_and(cols.lt(edge(2)));
  inside = inside.logical_and(rows.ge(edge(1)).logical_and(rows.lt(edge(3))));
  instance = instance * inside.to(at::kFloat);

  at::Tensor any = at::zeros({source_height, source_width},
                             at::TensorOptions().dtype(at::kBool).device(device));
  for (std::int64_t start = 0; start < k; start += kInstancesPerChunk) {
    const std::int64_t end = std::min(k, start + kInstancesPerChunk);
    at::Tensor chunk = instance.slice(0, start, end).unsqueeze(0);  // [1, c, ph, pw]
    at::Tensor resampled = resample_to_source(chunk, geometry, source_width, source_height);
    any = any.logical_or(resampled[0].ge(options.mask_threshold).any(0));
  }
  return threshold_to_mask(any.to(at::kFloat), 0.5);
}

}  // namespace segmentor
