#include "models/manifest.h"

#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace segmentor {
namespace {

using Json = nlohmann::json;

Json minimal() {
  return Json{{"name", "m"}, {"kind", "foreground_probability"}, {"input_width", 32},
              {"input_height", 16}};
}

Result<ModelManifest> parse(const Json& j) { return parse_manifest(j.dump(), "m.json"); }

TEST(ManifestTest, MinimalGetsDocumentedDefaults) {
  auto m = parse(minimal());
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->name, "m");
  EXPECT_EQ(m->kind, ModelKind::kForegroundProbability);
  EXPECT_EQ(m->input_width, 32);
  EXPECT_EQ(m->input_height, 16);
  EXPECT_EQ(m->layout, InputLayout::kNchw);
  EXPECT_DOUBLE_EQ(m->pixel_scale, 1.0 / 255.0);
  EXPECT_EQ(m->mean, (std::array<double, 3>{0, 0, 0}));
  EXPECT_EQ(m->std_dev, (std::array<double, 3>{1, 1, 1}));
  EXPECT_EQ(m->resize, ResizeMode::kStretch);
  EXPECT_DOUBLE_EQ(m->letterbox_pad_value, 114);
  EXPECT_EQ(m->output_index, -1);
  EXPECT_EQ(m->output_activation, OutputActivation::kNone);
  EXPECT_DOUBLE_EQ(m->mask_threshold, 0.5);
  EXPECT_EQ(m->person_class, 0);
  EXPECT_DOUBLE_EQ(m->conf_threshold, 0.5);
  EXPECT_DOUBLE_EQ(m->iou_threshold, 0.7);
  EXPECT_EQ(m->weights_dtype, WeightsDtype::kFloat32);
  EXPECT_FALSE(m->is_test_model);
  EXPECT_EQ(m->source, "");
  EXPECT_EQ(m->licence, "");
}

TEST(ManifestTest, EveryFieldIsRead) {
  Json j = {{"name", "yolo"},          {"kind", "yolo_seg"},
            {"input_width", 640},      {"input_height", 320},
            {"layout", "nhwc"},        {"pixel_scale", 1.0},
            {"mean", {1, 2, 3}},       {"std", {4, 5, 6}},
            {"resize", "letterbox"},   {"letterbox_pad_value", 0},
            {"output_index", 0},       {"output_activation", "sigmoid"},
            {"mask_threshold", 0.25},  {"num_classes", 80},
            {"person_class", 3},       {"conf_threshold", 0.4},
            {"iou_threshold", 0.6},    {"weights_dtype", "float16"},
            {"is_test_model", true},   {"source", "here"},
            {"licence", "AGPL-3.0"}};
  auto m = parse(j);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->kind, ModelKind::kYoloSeg);
  EXPECT_EQ(m->input_width, 640);
  EXPECT_EQ(m->input_height, 320);
  EXPECT_EQ(m->layout, InputLayout::kNhwc);
  EXPECT_DOUBLE_EQ(m->pixel_scale, 1.0);
  EXPECT_EQ(m->mean, (std::array<double, 3>{1, 2, 3}));
  EXPECT_EQ(m->std_dev, (std::array<double, 3>{4, 5, 6}));
  EXPECT_EQ(m->resize, ResizeMode::kLetterbox);
  EXPECT_DOUBLE_EQ(m->letterbox_pad_value, 0);
  EXPECT_EQ(m->output_index, 0);
  EXPECT_EQ(m->output_activation, OutputActivation::kSigmoid);
  EXPECT_DOUBLE_EQ(m->mask_threshold, 0.25);
  EXPECT_EQ(m->num_classes, 80);
  EXPECT_EQ(m->person_class, 3);
  EXPECT_DOUBLE_EQ(m->conf_threshold, 0.4);
  EXPECT_DOUBLE_EQ(m->iou_threshold, 0.6);
  EXPECT_EQ(m->weights_dtype, WeightsDtype::kFloat16);
  EXPECT_TRUE(m->is_test_model);
  EXPECT_EQ(m->source, "here");
  EXPECT_EQ(m->licence, "AGPL-3.0");
}

struct BadField {
  const char* field;  // the field the error must name
  Json value;         // set on top of minimal(); null = remove the field
};

class ManifestBadFieldTest : public ::testing::TestWithParam<BadField> {};

TEST_P(ManifestBadFieldTest, IsCorruptDataNamingFileAndField) {
  Json j = minimal();
  const BadField& bad = GetParam();
  if (bad.value.is_null()) {
    j.erase(bad.field);
  } else {
    j[bad.field] = bad.value;
  }
  auto m = parse(j);
  ASSERT_FALSE(m.ok()) << bad.field;
  EXPECT_EQ(m.status().code(), ErrorCode::kCorruptData);
  EXPECT_NE(m.status().message().find("m.json"), std::string::npos) << m.status().message();
  EXPECT_NE(m.status().message().find(std::string("\"") + bad.field + "\""), std::string::npos)
      << m.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Fields, ManifestBadFieldTest,
    ::testing::Values(
        BadField{"name", nullptr}, BadField{"name", 3}, BadField{"name", ""},
        BadField{"kind", nullptr}, BadField{"kind", "segment_everything"},
        BadField{"input_width", nullptr}, BadField{"input_width", 0},
        BadField{"input_width", 64.5}, BadField{"input_width", "64"},
        BadField{"input_height", nullptr}, BadField{"input_height", -1},
        BadField{"layout", "chw"}, BadField{"pixel_scale", "1/255"}, BadField{"pixel_scale", 0},
        BadField{"mean", Json::array({0, 0})}, BadField{"mean", Json::array({0, "x", 0})},
        BadField{"std", Json::array({1, 0, 1})}, BadField{"std", 1},
        BadField{"resize", "crop"}, BadField{"letterbox_pad_value", 300},
        BadField{"output_index", 1.5}, BadField{"output_activation", "softmax"},
        BadField{"mask_threshold", 1.5}, BadField{"num_classes", "80"},
        BadField{"person_class", true}, BadField{"conf_threshold", -0.1},
        BadField{"iou_threshold", 2}, BadField{"weights_dtype", "bfloat16"},
        BadField{"is_test_model", "yes"}, BadField{"source", 1}, BadField{"licence", false},
        BadField{"colour_space", "rgb"}));

TEST(ManifestTest, YoloNeedsNumClassesAndAValidPersonClass) {
  Json j = minimal();
  j["kind"] = "yolo_seg";
  auto m = parse(j);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("\"num_classes\""), std::string::npos);
  j["num_classes"] = 2;
  j["person_class"] = 2;
  m = parse(j);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("\"person_class\""), std::string::npos);
  j["person_class"] = 1;
  EXPECT_TRUE(parse(j).ok());
}

TEST(ManifestTest, PersonDetectorNeedsClassesStridesAndBins) {
  Json j = minimal();
  j["kind"] = "person_detector";
  j["num_classes"] = 80;
  auto m = parse(j);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("\"strides\""), std::string::npos) << m.status().message();
  j["strides"] = Json::array({8, 16, 0});
  m = parse(j);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("\"strides\""), std::string::npos);
  j["strides"] = Json::array({8, 16, 32});
  m = parse(j);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("\"reg_bins\""), std::string::npos);
  j["reg_bins"] = 11;
  j["channel_order"] = "bgr";
  j["box_margin"] = 0.15;
  m = parse(j);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->kind, ModelKind::kPersonDetector);
  EXPECT_EQ(m->strides, (std::vector<int>{8, 16, 32}));
  EXPECT_EQ(m->reg_bins, 11);
  EXPECT_EQ(m->channel_order, ChannelOrder::kBgr);
  EXPECT_DOUBLE_EQ(m->box_margin, 0.15);
  j["box_margin"] = 1.5;
  EXPECT_FALSE(parse(j).ok());
  j["box_margin"] = 0.1;
  j["channel_order"] = "grb";
  EXPECT_FALSE(parse(j).ok());
}

TEST(ManifestTest, NotJsonOrNotAnObject) {
  auto m = parse_manifest("{\"name\": ", "broken.json");
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), ErrorCode::kCorruptData);
  EXPECT_NE(m.status().message().find("broken.json"), std::string::npos);
  EXPECT_EQ(parse_manifest("[1,2]", "a.json").status().code(), ErrorCode::kCorruptData);
}

TEST(ManifestTest, ReadsFilesAndReportsMissingOnes) {
  const auto dir = std::filesystem::path(::testing::TempDir()) / "manifest_test";
  std::filesystem::create_directories(dir);
  const auto path = dir / "m.json";
  std::ofstream(path) << minimal().dump();
  auto m = read_manifest(path);
  ASSERT_TRUE(m.ok()) << m.status().to_string();
  EXPECT_EQ(m->input_width, 32);

  auto missing = read_manifest(dir / "nope.json");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.json"), std::string::npos);
}

TEST(ManifestTest, ManifestPathIsBesideTheModel) {
  EXPECT_EQ(manifest_path_for("/a/b/model.pt"), std::filesystem::path("/a/b/model.json"));
}

TEST(ManifestTest, GeneratedTestModelManifestsParse) {
  for (const char* name : {"test-bright", "test-bright-nhwc", "test-bright-letterbox",
                           "test-disc", "test-person-prob", "test-yolo", "test-detector"}) {
    auto m = read_manifest(std::filesystem::path(SEGMENTOR_TEST_MODELS_DIR) /
                           (std::string(name) + ".json"));
    ASSERT_TRUE(m.ok()) << m.status().to_string();
    EXPECT_EQ(m->name, name);
    EXPECT_TRUE(m->is_test_model);
  }
}

}  // namespace
}  // namespace segmentor
