// End-to-end tests of the TorchScript MaskModel on the toy models of tools/make_test_models.py,
// whose outputs are known, so every mask below is exact up to pixels that bilinear interpolation
// leaves on the threshold (computed, not guessed: see ReferenceBright).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "bilinear_reference.h"
#include "models/model_loader.h"
#include "models/script_error.h"

namespace segmentor {
namespace {

namespace fs = std::filesystem;

const fs::path kModels = SEGMENTOR_TEST_MODELS_DIR;

struct Rect {
  int x0, y0, x1, y1;  // end-exclusive
  bool contains(int x, int y) const { return x >= x0 && x < x1 && y >= y0 && y < y1; }
};

RgbImage solid(int width, int height) {
  return {width, height, std::vector<std::uint8_t>(static_cast<std::size_t>(width) * height * 3)};
}

void paint(RgbImage& image, const Rect& r, int channel, std::uint8_t value) {
  for (int y = r.y0; y < r.y1; ++y) {
    for (int x = r.x0; x < r.x1; ++x) {
      image.pixels[(static_cast<std::size_t>(y) * image.width + x) * 3 + channel] = value;
    }
  }
}

std::unique_ptr<MaskModel> load(const fs::path& file, ModelOptions options = {}) {
  auto model = load_mask_model(file, options);
  EXPECT_TRUE(model.ok()) << model.status().to_string();
  return model.ok() ? std::move(model).value() : nullptr;
}

std::unique_ptr<MaskModel> load_named(const std::string& name) {
  return load(kModels / (name + ".pt"));
}

std::uint8_t at(const Mask& m, int x, int y) {
  return m.values[static_cast<std::size_t>(y) * m.width + x];
}

// Expects mask == 255 exactly inside `r` and 0 outside.
void expect_rect(const Mask& mask, const Rect& r) {
  int wrong = 0;
  for (int y = 0; y < mask.height; ++y) {
    for (int x = 0; x < mask.width; ++x) {
      const std::uint8_t want = r.contains(x, y) ? 255 : 0;
      if (at(mask, x, y) != want && ++wrong <= 5) {
        ADD_FAILURE() << "pixel (" << x << "," << y << ") is " << int{at(mask, x, y)}
                      << ", expected " << int{want};
      }
    }
  }
  EXPECT_EQ(wrong, 0);
}

// ---- a double-precision reference of the test-bright pipeline ----

using test::Expect;
using test::Grid;

// What test-bright must produce for `image` (red channel > 0.5 at the model's 64x64, the map
// cropped to the unpadded region and resized back, kept at >= 0.5). A pixel is kEither when a value
// on the way lies within `eps` of its threshold (float32 / float16 rounding can go either way).
std::vector<Expect> reference_bright(const RgbImage& image, bool letterbox, double pad_value) {
  constexpr int kSize = 64;
  constexpr double kEps = 1e-2;
  int rw = kSize, rh = kSize, px = 0, py = 0;
  if (letterbox) {
    const double s = std::min(static_cast<double>(kSize) / image.width,
                              static_cast<double>(kSize) / image.height);
    rw = static_cast<int>(std::lround(image.width * s));
    rh = static_cast<int>(std::lround(image.height * s));
    px = (kSize - rw) / 2;
    py = (kSize - rh) / 2;
  }
  Grid red(static_cast<std::size_t>(image.height),
           std::vector<double>(static_cast<std::size_t>(image.width)));
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      red[static_cast<std::size_t>(y)][static_cast<std::size_t>(x)] =
          image.pixels[(static_cast<std::size_t>(y) * image.width + x) * 3] / 255.0;
    }
  }
  const Grid placed = test::bilinear_resize(red, rw, rh);
  // The model's output on the canvas, as two bounds: ambiguous pixels 0 (lo) or 1 (hi).
  Grid lo(kSize, std::vector<double>(kSize)), hi = lo;
  for (int y = 0; y < kSize; ++y) {
    for (int x = 0; x < kSize; ++x) {
      const bool inside = x >= px && x < px + rw && y >= py && y < py + rh;
      const double v =
          inside ? placed[static_cast<std::size_t>(y - py)][static_cast<std::size_t>(x - px)]
                 : pad_value / 255.0;
      lo[static_cast<std::size_t>(y)][static_cast<std::size_t>(x)] = v > 0.5 + kEps ? 1 : 0;
      hi[static_cast<std::size_t>(y)][static_cast<std::size_t>(x)] = v > 0.5 - kEps ? 1 : 0;
    }
  }
  auto crop = [&](const Grid& g) {
    Grid out;
    for (int y = py; y < py + rh; ++y) {
      out.emplace_back(g[static_cast<std::size_t>(y)].begin() + px,
                       g[static_cast<std::size_t>(y)].begin() + px + rw);
    }
    return test::bilinear_resize(out, image.width, image.height);
  };
  const Grid out_lo = crop(lo), out_hi = crop(hi);
  std::vector<Expect> expect;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const double a = out_lo[static_cast<std::size_t>(y)][static_cast<std::size_t>(x)];
      const double b = out_hi[static_cast<std::size_t>(y)][static_cast<std::size_t>(x)];
      expect.push_back(a >= 0.5 + kEps  ? Expect::kFull
                       : b < 0.5 - kEps ? Expect::kZero
                                        : Expect::kEither);
    }
  }
  return expect;
}

// ---- test-bright ----

class BrightTest : public ::testing::TestWithParam<const char*> {};

TEST_P(BrightTest, ExactMaskAtModelSize) {
  auto model = load_named(GetParam());
  ASSERT_NE(model, nullptr);
  RgbImage image = solid(64, 64);
  const Rect red{10, 5, 30, 50};
  paint(image, red, 0, 255);
  paint(image, {40, 40, 60, 60}, 1, 255);  // green and blue are not "bright" for this model
  paint(image, {40, 2, 60, 20}, 2, 255);
  auto mask = model->segment(image);
  ASSERT_TRUE(mask.ok()) << mask.status().to_string();
  EXPECT_EQ(mask->width, 64);
  EXPECT_EQ(mask->height, 64);
  expect_rect(*mask, red);
}

TEST_P(BrightTest, OtherSourceSizesMatchTheReference) {
  auto model = load_named(GetParam());
  ASSERT_NE(model, nullptr);
  // Wide and tall, down- and up-scaled, an off-centre non-square shape: a transposed or flipped
  // pipeline cannot match.
  for (auto [w, h, r] :
       {std::tuple{100, 60, Rect{20, 10, 70, 45}}, std::tuple{37, 91, Rect{3, 50, 20, 88}},
        std::tuple{128, 128, Rect{0, 0, 64, 32}}}) {
    RgbImage image = solid(w, h);
    paint(image, r, 0, 255);
    auto mask = model->segment(image);
    ASSERT_TRUE(mask.ok()) << mask.status().to_string();
    ASSERT_EQ(mask->width, w);
    ASSERT_EQ(mask->height, h);
    const int either = test::expect_matches(*mask, reference_bright(image, false, 0));
    // Only a band along the shape's edges may be ambiguous.
    EXPECT_LE(either, 2 * ((r.x1 - r.x0) + (r.y1 - r.y0)) * 2) << w << "x" << h;
    int kept = 0;
    for (auto v : mask->values) kept += v == 255;
    EXPECT_GT(kept, (r.x1 - r.x0) * (r.y1 - r.y0) / 2);
  }
}

INSTANTIATE_TEST_SUITE_P(Layouts, BrightTest, ::testing::Values("test-bright", "test-bright-nhwc"));

TEST(BrightLetterboxTest, PaddingIsCroppedAway) {
  // The pad value 255 is "bright": if the padding reached the mask, the top and bottom bands of
  // this black image would be foreground.
  auto model = load_named("test-bright-letterbox");
  ASSERT_NE(model, nullptr);
  RgbImage black = solid(128, 64);
  auto empty = model->segment(black);
  ASSERT_TRUE(empty.ok()) << empty.status().to_string();
  EXPECT_FALSE(empty->any());

  for (auto [w, h, r] :
       {std::tuple{128, 64, Rect{10, 8, 50, 40}}, std::tuple{50, 120, Rect{5, 60, 45, 110}}}) {
    RgbImage image = solid(w, h);
    paint(image, r, 0, 255);
    auto mask = model->segment(image);
    ASSERT_TRUE(mask.ok()) << mask.status().to_string();
    const int either = test::expect_matches(*mask, reference_bright(image, true, 255));
    EXPECT_LE(either, 4 * ((r.x1 - r.x0) + (r.y1 - r.y0)) * 2);
  }
}

// ---- test-bright-trap: a model that raises ----

// Note [TorchScript errors lead with the error]: the reason a dead-letter header keeps (its first
// 500 characters) must hold the model's own error, not the start of the interpreter's traceback.
// Note [A model's raise is about its input]: kInvalidArgument, not retried.
TEST(BrightTrapTest, ARaiseInTheModelIsAFailureLedByItsMessage) {
  auto model = load_named("test-bright-trap");
  ASSERT_NE(model, nullptr);
  RgbImage green = solid(64, 48);
  paint(green, {0, 0, 64, 48}, 1, 255);
  auto failed = model->segment(green);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), ErrorCode::kInvalidArgument);
  const std::string message = failed.status().message();
  const std::size_t error = message.find("test-bright-trap: a green image");
  ASSERT_NE(error, std::string::npos) << message;
  EXPECT_LT(error, 120u) << message;
  EXPECT_NE(message.find("Traceback of TorchScript"), std::string::npos) << "kept, after it";

  // Any other image: test-bright's mask.
  RgbImage image = solid(64, 64);
  const Rect red{10, 5, 30, 50};
  paint(image, red, 0, 255);
  auto mask = model->segment(image);
  ASSERT_TRUE(mask.ok()) << mask.status().to_string();
  expect_rect(*mask, red);
}

TEST(ScriptErrorTest, TheErrorLineMovesToTheFront) {
  const std::string traced =
      "The following operation failed in the TorchScript interpreter.\n"
      "Traceback of TorchScript, serialized code (most recent call last):\n"
      "  File \"code/__torch__.py\", line 30, in forward\n"
      "\n"
      "      ops.prim.RaiseException(_0, \"builtins.RuntimeError\")\n"
      "Traceback of TorchScript, original code (most recent call last):\n"
      "  File \"m.py\", line 16, in forward\n"
      "builtins.RuntimeError: bad input\n"
      "second line of it\n";
  const std::string led = lead_with_script_error(traced);
  EXPECT_EQ(led.rfind("builtins.RuntimeError: bad input\nsecond line of it [The following", 0), 0u)
      << led;
  EXPECT_NE(led.find("line 16, in forward]"), std::string::npos) << led;
  EXPECT_EQ(lead_with_script_error("plain error"), "plain error");
  const std::string no_error = "x\nTraceback of TorchScript (most recent call last):\n  File a\n";
  EXPECT_EQ(lead_with_script_error(no_error), no_error);
}

// ---- test-disc: tuple outputs ----

TEST(DiscTest, LastOutputIsTheFineDisc) {
  auto model = load_named("test-disc");
  ASSERT_NE(model, nullptr);
  auto mask = model->segment(solid(64, 64));
  ASSERT_TRUE(mask.ok()) << mask.status().to_string();
  for (int y = 0; y < 64; ++y) {
    for (int x = 0; x < 64; ++x) {
      const double dx = x + 0.5 - 32, dy = y + 0.5 - 32;
      ASSERT_EQ(at(*mask, x, y), dx * dx + dy * dy <= 400 ? 255 : 0) << x << "," << y;
    }
  }
}

fs::path copy_with_manifest_change(const std::string& name, const std::string& field,
                                   const nlohmann::json& value) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("torch_mask_model_test_" + field);
  fs::create_directories(dir);
  fs::copy_file(kModels / (name + ".pt"), dir / (name + ".pt"),
                fs::copy_options::overwrite_existing);
  nlohmann::json manifest = nlohmann::json::parse(std::ifstream(kModels / (name + ".json")));
  manifest[field] = value;
  std::ofstream(dir / (name + ".json")) << manifest.dump();
  return dir / (name + ".pt");
}

TEST(DiscTest, OutputIndexPicksTheElement) {
  auto coarse = load(copy_with_manifest_change("test-disc", "output_index", 0));
  ASSERT_NE(coarse, nullptr);
  auto mask = coarse->segment(solid(30, 20));
  ASSERT_TRUE(mask.ok()) << mask.status().to_string();
  expect_rect(*mask, {0, 0, 30, 20});  // the coarse output is all ones

  auto beyond = load(copy_with_manifest_change("test-disc", "output_index", 2));
  ASSERT_NE(beyond, nullptr);
  auto failed = beyond->segment(solid(30, 20));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), ErrorCode::kInternal);
  EXPECT_NE(failed.status().message().find("test-disc"), std::string::npos);
}

// ---- test-person-prob: float16 weights, sigmoid ----

TEST(PersonProbTest, GreenIsPersonAndInfoIsFilledIn) {
  auto model = load_named("test-person-prob");
  ASSERT_NE(model, nullptr);
  const ModelInfo& info = model->info();
  EXPECT_EQ(info.name, "test-person-prob");
  EXPECT_EQ(info.kind, ModelKind::kPersonProbability);
  EXPECT_EQ(info.input_width, 64);
  EXPECT_EQ(info.input_height, 64);
  EXPECT_TRUE(info.is_test_model);
  EXPECT_EQ(info.path, (kModels / "test-person-prob.pt").string());
  if (info.device == "cpu") {
    EXPECT_FALSE(info.fp16);
  }

  RgbImage image = solid(64, 64);
  const Rect green{8, 16, 24, 60};
  paint(image, green, 1, 255);
  paint(image, {30, 30, 60, 60}, 0, 255);
  auto mask = model->segment(image);
  ASSERT_TRUE(mask.ok()) << mask.status().to_string();
  expect_rect(*mask, green);
}

TEST(PersonProbTest, FreezingDoesNotChangeTheMask) {
  ModelOptions plain;
  plain.freeze = false;
  auto unfrozen = load(kModels / "test-person-prob.pt", plain);
  auto frozen = load(kModels / "test-person-prob.pt", ModelOptions{});
  ASSERT_NE(unfrozen, nullptr);
  ASSERT_NE(frozen, nullptr);
  EXPECT_FALSE(unfrozen->info().checks.frozen);
  RecordProperty("frozen", frozen->info().checks.frozen ? "yes" : "no");
  RgbImage image = solid(50, 70);
  paint(image, {5, 10, 30, 60}, 1, 255);
  paint(image, {20, 30, 45, 65}, 1, 128);  // near the 0.5 boundary on purpose
  auto a = unfrozen->segment(image);
  auto b = frozen->segment(image);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->values, b->values);
  EXPECT_TRUE(a->any());
}

// ---- test-yolo end to end ----

TEST(YoloModelTest, KeepsOnlyTheBestPersonWithPaddingRemoved) {
  auto model = load_named("test-yolo");
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(model->info().kind, ModelKind::kYoloSeg);
  // The kept box is x 16..48, y 24..40 of the 64x64 input, prototype cells x 8..24, y 12..20 of
  // the 32x32 prototypes (tools/make_test_models.py); the others must leave no trace.
  const double inside = 1.0 / (1.0 + std::exp(-8.0));
  auto square = model->segment(solid(64, 64));
  ASSERT_TRUE(square.ok()) << square.status().to_string();
  const auto square_expected =
      test::box_mask_reference({32, 32, 64, 64, 0, 0, 64, 64}, 8, 12, 24, 20, inside, 64, 64);
  EXPECT_EQ(test::expect_matches(*square, square_expected), 0);
  EXPECT_EQ(test::count_full(square_expected), 32 * 16);  // 2x upscale: even corners stay
  // 128x64: scale 0.5, 16 rows of padding on top: the box lands at about x 32..96, y 16..48.
  auto wide = model->segment(solid(128, 64));
  ASSERT_TRUE(wide.ok()) << wide.status().to_string();
  const auto wide_expected =
      test::box_mask_reference({32, 32, 64, 64, 0, 16, 64, 32}, 8, 12, 24, 20, inside, 128, 64);
  EXPECT_EQ(test::expect_matches(*wide, wide_expected), 0);
  EXPECT_GT(test::count_full(wide_expected), 60 * 30);
}

// ---- failures ----

TEST(SegmentFailureTest, InjectedOomIsOutOfMemoryAndNeverAMask) {
  ModelOptions options;
  options.inject_oom_rate = 1.0;
  auto model = load(kModels / "test-bright.pt", options);
  ASSERT_NE(model, nullptr);
  RgbImage image = solid(64, 64);
  paint(image, {0, 0, 64, 64}, 0, 255);
  for (int i = 0; i < 20; ++i) {
    auto mask = model->segment(image);
    ASSERT_FALSE(mask.ok());
    EXPECT_EQ(mask.status().code(), ErrorCode::kOutOfMemory);
    EXPECT_NE(mask.status().message().find("out of memory"), std::string::npos);
  }
}

TEST(SegmentFailureTest, PartialInjectionMixesOutcomes) {
  ModelOptions options;
  options.inject_oom_rate = 0.5;
  auto model = load(kModels / "test-bright.pt", options);
  ASSERT_NE(model, nullptr);
  int ooms = 0, masks = 0;
  for (int i = 0; i < 200; ++i) {
    auto mask = model->segment(solid(16, 16));
    if (mask.ok()) {
      ++masks;
      EXPECT_EQ(mask->width, 16);
    } else {
      EXPECT_EQ(mask.status().code(), ErrorCode::kOutOfMemory);
      ++ooms;
    }
  }
  EXPECT_GT(ooms, 0);
  EXPECT_GT(masks, 0);
}

TEST(SegmentFailureTest, MalformedImageIsInvalidArgument) {
  auto model = load_named("test-bright");
  ASSERT_NE(model, nullptr);
  RgbImage bad = solid(10, 10);
  bad.pixels.resize(299);
  EXPECT_EQ(model->segment(bad).status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(model->segment(RgbImage{}).status().code(), ErrorCode::kInvalidArgument);
}

TEST(SegmentFailureTest, WrongOutputShapeIsInternalNamingTheModel) {
  // test-yolo's outputs read as a probability map: element -1 is [1,32,32,32], not [1,1,h,w].
  auto model = load(copy_with_manifest_change("test-yolo", "kind", "foreground_probability"));
  ASSERT_NE(model, nullptr);
  auto mask = model->segment(solid(64, 64));
  ASSERT_FALSE(mask.ok());
  EXPECT_EQ(mask.status().code(), ErrorCode::kInternal);
  EXPECT_NE(mask.status().message().find("test-yolo"), std::string::npos);
}

// ---- the verdicts in a start-up log line ----

TEST(LoadChecksTest, DescribeNamesEveryVerdict) {
  LoadChecks checks;
  EXPECT_EQ(describe(checks), "not frozen, batches unchecked");
  checks.frozen = true;
  checks.batches = false;
  EXPECT_EQ(describe(checks), "frozen, not optimised, does not batch");
  checks.optimized = true;
  checks.batches = true;
  EXPECT_EQ(describe(checks), "frozen, optimised, batches");
}

// Note [Freezing TorchScript modules]: on CUDA the loader freezes and stops there, on the CPU
// the optimised graph is kept only when its own pass matched.
TEST(LoadChecksTest, OnCudaTheLoaderFreezesButDoesNotOptimise) {
  if (!resolve_device("cuda").ok()) GTEST_SKIP() << "no CUDA device";
  ModelOptions options;
  options.device = "cuda:0";
  auto model = load(kModels / "test-person-prob.pt", options);
  ASSERT_NE(model, nullptr);
  EXPECT_TRUE(model->info().checks.frozen);
  EXPECT_FALSE(model->info().checks.optimized);
}

}  // namespace
}  // namespace segmentor
