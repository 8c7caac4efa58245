// The model manifest (<name>.json beside <name>.pt): how to feed a network and read its output.
// The format is docs/model-manifest.md; this header is torch-free so the config and pipeline code
// can read manifests without LibTorch.
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "models/mask_model.h"

namespace segmentor {

enum class InputLayout { kNchw, kNhwc };
enum class ResizeMode { kStretch, kLetterbox };
enum class OutputActivation { kNone, kSigmoid };
enum class WeightsDtype { kFloat32, kFloat16 };
enum class ChannelOrder { kRgb, kBgr };

std::string_view to_string(InputLayout layout);
std::string_view to_string(ResizeMode mode);
std::string_view to_string(OutputActivation activation);
std::string_view to_string(WeightsDtype dtype);
std::string_view to_string(ChannelOrder order);

// Every field of docs/model-manifest.md with its documented default. A plain value; copy freely.
struct ModelManifest {
  std::string name;                                  // required
  ModelKind kind = ModelKind::kForegroundProbability;  // required
  int input_width = 0;                               // required, > 0
  int input_height = 0;                              // required, > 0
  InputLayout layout = InputLayout::kNchw;
  ChannelOrder channel_order = ChannelOrder::kRgb;  // of the network input; mean/std follow it
  double pixel_scale = 1.0 / 255.0;
  std::array<double, 3> mean = {0.0, 0.0, 0.0};
  std::array<double, 3> std_dev = {1.0, 1.0, 1.0};  // JSON "std"; each > 0
  ResizeMode resize = ResizeMode::kStretch;
  double letterbox_pad_value = 114.0;                // RGB byte units, [0, 255]
  int output_index = -1;                             // -1 = last element of a tuple/list
  OutputActivation output_activation = OutputActivation::kNone;
  double mask_threshold = 0.5;                       // [0, 1]
  int num_classes = 0;          // yolo_seg, person_detector: required there, > 0
  int person_class = 0;         // yolo_seg, person_detector: [0, num_classes)
  double conf_threshold = 0.5;  // yolo_seg, person_detector (PERSON_MIN_SCORE wins): [0, 1]
  double iou_threshold = 0.7;   // yolo_seg, person_detector: [0, 1]
  std::vector<int> strides;     // person_detector only, required there, each > 0
  int reg_bins = 0;             // person_detector only, required there, > 0
  double box_margin = 0.1;      // person_detector: each side grows by this x box size
  WeightsDtype weights_dtype = WeightsDtype::kFloat32;
  bool is_test_model = false;
  // false = never batch this model's forward passes, whatever MAX_MODEL_BATCH says (Note [Batching
  // admitted tasks], models/forward_batcher.h); true still needs the load-time batch probe.
  bool batchable = true;
  std::string source;
  std::string licence;
};

// Reads and validates a manifest. Strict: unknown fields, wrong JSON types (a string where a number
// belongs, 1.5 for an integer), unknown enum values and out-of-range values are errors whose
// message names the file and the field. Missing file -> kNotFound; unreadable -> kIo; anything
// malformed -> kCorruptData.
Result<ModelManifest> read_manifest(const std::filesystem::path& json_path);

// The same checks on JSON text already in memory; `origin` names it in error messages.
Result<ModelManifest> parse_manifest(std::string_view json_text, std::string_view origin);

// <model>.pt -> <model>.json
std::filesystem::path manifest_path_for(const std::filesystem::path& model_file);

}  // namespace segmentor
