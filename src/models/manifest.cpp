#include "models/manifest.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <utility>

#include <nlohmann/json.hpp>

namespace segmentor {

std::string_view to_string(InputLayout layout) {
  return layout == InputLayout::kNhwc ? "nhwc" : "nchw";
}
std::string_view to_string(ResizeMode mode) {
  return mode == ResizeMode::kLetterbox ? "letterbox" : "stretch";
}
std::string_view to_string(OutputActivation activation) {
  return activation == OutputActivation::kSigmoid ? "sigmoid" : "none";
}
std::string_view to_string(WeightsDtype dtype) {
  return dtype == WeightsDtype::kFloat16 ? "float16" : "float32";
}

std::string_view to_string(ChannelOrder order) {
  return order == ChannelOrder::kBgr ? "bgr" : "rgb";
}

std::filesystem::path manifest_path_for(const std::filesystem::path& model_file) {
  std::filesystem::path out = model_file;
  out.replace_extension(".json");
  return out;
}

namespace {

using Json = nlohmann::json;

// Reads fields one by one, remembering which it saw so that unknown ones can be reported, and
// turning every problem into a kCorruptData Status naming the origin and the field.
class FieldReader {
 public:
  FieldReader(const Json& object, std::string_view origin) : object_(object), origin_(origin) {}

  Status error(std::string_view field, std::string_view what) const {
    return corrupt_data(origin_ + ": field \"" + std::string(field) + "\": " + std::string(what));
  }

  // Marks the field as known and returns it, or nullptr when absent (an error if required).
  Result<const Json*> find(const char* field, bool required) {
    known_.insert(field);
    auto it = object_.find(field);
    if (it == object_.end()) {
      if (required) return error(field, "required but missing");
      return static_cast<const Json*>(nullptr);
    }
    return &*it;
  }

  Status read_string(const char* field, bool required, std::string& out) {
    SEGMENTOR_ASSIGN_OR_RETURN(const Json* value, find(field, required));
    if (value == nullptr) return Status::Ok();
    if (!value->is_string()) return error(field, "expected a string, got " + type_of(*value));
    out = value->get<std::string>();
    return Status::Ok();
  }

  Status read_int(const char* field, bool required, int& out) {
    SEGMENTOR_ASSIGN_OR_RETURN(const Json* value, find(field, required));
    if (value == nullptr) return Status::Ok();
    if (!value->is_number_integer()) {
      return error(field, "expected an integer, got " + type_of(*value));
    }
    const auto wide = value->get<std::int64_t>();
    if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max()) {
      return error(field, "integer out of range");
    }
    out = static_cast<int>(wide);
    return Status::Ok();
  }

  Status read_number(const char* field, double& out) {
    SEGMENTOR_ASSIGN_OR_RETURN(const Json* value, find(field, false));
    if (value == nullptr) return Status::Ok();
    if (!value->is_number()) return error(field, "expected a number, got " + type_of(*value));
    out = value->get<double>();
    if (!std::isfinite(out)) return error(field, "not a finite number");
    return Status::Ok();
  }

  Status read_bool(const char* field, bool& out) {
    SEGMENTOR_ASSIGN_OR_RETURN(const Json* value, find(field, false));
    if (value == nullptr) return Status::Ok();
    if (!value->is_boolean()) return error(field, "expected true or false, got " + type_of(*value));
    out = value->get<bool>();
    return Status::Ok();
  }

  Status read_triple(const char* field, std::array<double, 3>& out) {
    SEGMENTOR_ASSIGN_OR_RETURN(const Json* value, find(field, false));
    if (value == nullptr) return Status::Ok();
    if (!value->is_array() || value->size() != 3) {
      return error(field, "expected an array of 3 numbers");
    }
    for (std::size_t i = 0; i < 3; ++i) {
      const Json& item = (*value)[i];
      if (!item.is_number()) return error(field, "expected an array of 3 numbers");
      out[i] = item.get<double>();
    }
    return Status::Ok();
  }

  Status read_int_list(const char* field, bool required, std::vector<int>& out) {
    SEGMENTOR_ASSIGN_OR_RETURN(const Json* value, find(field, required));
    if (value == nullptr) return Status::Ok();
    if (!value->is_array()) return error(field, "expected an array of integers");
    out.clear();
    for (const Json& item : *value) {
      if (!item.is_number_integer()) return error(field, "expected an array of integers");
      const auto wide = item.get<std::int64_t>();
      if (wide < 1 || wide > 4096) return error(field, "every value must be in [1, 4096]");
      out.push_back(static_cast<int>(wide));
    }
    return Status::Ok();
  }

  // A string that must be one of `choices`; `out` gets the matching enum value.
  template <typename Enum>
  Status read_enum(const char* field, bool required,
                   std::initializer_list<std::pair<const char*, Enum>> choices, Enum& out) {
    std::string text;
    SEGMENTOR_ASSIGN_OR_RETURN(const Json* value, find(field, required));
    if (value == nullptr) return Status::Ok();
    SEGMENTOR_RETURN_IF_ERROR(read_string(field, required, text));
    std::string allowed;
    for (const auto& [name, enum_value] : choices) {
      if (text == name) {
        out = enum_value;
        return Status::Ok();
      }
      allowed += allowed.empty() ? "" : ", ";
      allowed += name;
    }
    return error(field, "\"" + text + "\" is not one of: " + allowed);
  }

  Status reject_unknown_fields() const {
    for (const auto& item : object_.items()) {
      if (known_.count(item.key()) == 0) return error(item.key(), "unknown field");
    }
    return Status::Ok();
  }

 private:
  static std::string type_of(const Json& value) { return value.type_name(); }

  const Json& object_;
  std::string origin_;
  std::set<std::string> known_;
};

Status validate(const ModelManifest& m, const FieldReader& reader) {
  if (m.name.empty()) return reader.error("name", "must not be empty");
  if (m.input_width <= 0) return reader.error("input_width", "must be > 0");
  if (m.input_height <= 0) return reader.error("input_height", "must be > 0");
  if (!(m.pixel_scale > 0.0)) return reader.error("pixel_scale", "must be > 0");
  for (double s : m.std_dev) {
    if (!(s > 0.0)) return reader.error("std", "every value must be > 0");
  }
  if (m.letterbox_pad_value < 0.0 || m.letterbox_pad_value > 255.0) {
    return reader.error("letterbox_pad_value", "must be in [0, 255]");
  }
  if (m.mask_threshold < 0.0 || m.mask_threshold > 1.0) {
    return reader.error("mask_threshold", "must be in [0, 1]");
  }
  if (m.conf_threshold < 0.0 || m.conf_threshold > 1.0) {
    return reader.error("conf_threshold", "must be in [0, 1]");
  }
  if (m.iou_threshold < 0.0 || m.iou_threshold > 1.0) {
    return reader.error("iou_threshold", "must be in [0, 1]");
  }
  if (m.kind == ModelKind::kYoloSeg || m.kind == ModelKind::kPersonDetector) {
    if (m.num_classes <= 0) return reader.error("num_classes", "required for this kind, > 0");
    if (m.person_class < 0 || m.person_class >= m.num_classes) {
      return reader.error("person_class", "must be in [0, num_classes)");
    }
  }
  if (m.kind == ModelKind::kPersonDetector) {
    if (m.strides.empty()) return reader.error("strides", "required for person_detector");
    if (m.reg_bins <= 0) return reader.error("reg_bins", "required for person_detector, > 0");
  }
  if (m.box_margin < 0.0 || m.box_margin > 1.0) {
    return reader.error("box_margin", "must be in [0, 1]");
  }
  return Status::Ok();
}

}  // namespace

Result<ModelManifest> parse_manifest(std::string_view json_text, std::string_view origin) {
  Json root;
  try {
    root = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::exception& e) {
    return corrupt_data(std::string(origin) + ": not valid JSON: " + e.what());
  }
  if (!root.is_object()) return corrupt_data(std::string(origin) + ": expected a JSON object");

  ModelManifest m;
  FieldReader r(root, origin);
  SEGMENTOR_RETURN_IF_ERROR(r.read_string("name", true, m.name));
  SEGMENTOR_RETURN_IF_ERROR(
      r.read_enum<ModelKind>("kind", true,
                             {{"foreground_probability", ModelKind::kForegroundProbability},
                              {"person_probability", ModelKind::kPersonProbability},
                              {"yolo_seg", ModelKind::kYoloSeg},
                              {"person_detector", ModelKind::kPersonDetector}},
                             m.kind));
  SEGMENTOR_RETURN_IF_ERROR(r.read_int("input_width", true, m.input_width));
  SEGMENTOR_RETURN_IF_ERROR(r.read_int("input_height", true, m.input_height));
  SEGMENTOR_RETURN_IF_ERROR(r.read_enum<InputLayout>(
      "layout", false, {{"nchw", InputLayout::kNchw}, {"nhwc", InputLayout::kNhwc}}, m.layout));
  SEGMENTOR_RETURN_IF_ERROR(r.read_enum<ChannelOrder>(
      "channel_order", false, {{"rgb", ChannelOrder::kRgb}, {"bgr", ChannelOrder::kBgr}},
      m.channel_order));
  SEGMENTOR_RETURN_IF_ERROR(r.read_number("pixel_scale", m.pixel_scale));
  SEGMENTOR_RETURN_IF_ERROR(r.read_triple("mean", m.mean));
  SEGMENTOR_RETURN_IF_ERROR(r.read_triple("std", m.std_dev));
  SEGMENTOR_RETURN_IF_ERROR(r.read_enum<ResizeMode>(
      "resize", false, {{"stretch", ResizeMode::kStretch}, {"letterbox", ResizeMode::kLetterbox}},
      m.resize));
  SEGMENTOR_RETURN_IF_ERROR(r.read_number("letterbox_pad_value", m.letterbox_pad_value));
  SEGMENTOR_RETURN_IF_ERROR(r.read_int("output_index", false, m.output_index));
  SEGMENTOR_RETURN_IF_ERROR(r.read_enum<OutputActivation>(
      "output_activation", false,
      {{"none", OutputActivation::kNone}, {"sigmoid", OutputActivation::kSigmoid}},
      m.output_activation));
  SEGMENTOR_RETURN_IF_ERROR(r.read_number("mask_threshold", m.mask_threshold));
  const bool is_yolo = m.kind == ModelKind::kYoloSeg;
  const bool is_detector = m.kind == ModelKind::kPersonDetector;
  SEGMENTOR_RETURN_IF_ERROR(r.read_int("num_classes", is_yolo || is_detector, m.num_classes));
  SEGMENTOR_RETURN_IF_ERROR(r.read_int("person_class", false, m.person_class));
  SEGMENTOR_RETURN_IF_ERROR(r.read_number("conf_threshold", m.conf_threshold));
  SEGMENTOR_RETURN_IF_ERROR(r.read_number("iou_threshold", m.iou_threshold));
  SEGMENTOR_RETURN_IF_ERROR(r.read_int_list("strides", is_detector, m.strides));
  SEGMENTOR_RETURN_IF_ERROR(r.read_int("reg_bins", is_detector, m.reg_bins));
  SEGMENTOR_RETURN_IF_ERROR(r.read_number("box_margin", m.box_margin));
  SEGMENTOR_RETURN_IF_ERROR(r.read_enum<WeightsDtype>(
      "weights_dtype", false,
      {{"float32", WeightsDtype::kFloat32}, {"float16", WeightsDtype::kFloat16}},
      m.weights_dtype));
  SEGMENTOR_RETURN_IF_ERROR(r.read_bool("is_test_model", m.is_test_model));
  SEGMENTOR_RETURN_IF_ERROR(r.read_bool("batchable", m.batchable));
  SEGMENTOR_RETURN_IF_ERROR(r.read_string("source", false, m.source));
  SEGMENTOR_RETURN_IF_ERROR(r.read_string("licence", false, m.licence));
  SEGMENTOR_RETURN_IF_ERROR(r.reject_unknown_fields());
  SEGMENTOR_RETURN_IF_ERROR(validate(m, r));
  return m;
}

Result<ModelManifest> read_manifest(const std::filesystem::path& json_path) {
  std::error_code ec;
  if (!std::filesystem::exists(json_path, ec)) {
    return not_found("model manifest " + json_path.string() + " does not exist");
  }
  std::ifstream in(json_path, std::ios::binary);
  if (!in) return io_error("cannot open model manifest " + json_path.string());
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return io_error("cannot read model manifest " + json_path.string());
  return parse_manifest(text.str(), json_path.string());
}

}  // namespace segmentor
