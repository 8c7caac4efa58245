// End to end: the real `segmentor` binary over a folder with the awkward inputs users have — a
// corrupt file, a PNG with alpha, a WebP, a JPEG stored rotated with an EXIF orientation — using
// the test models, whose masks are known: foreground = red pixels, people = green pixels.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

#include "imaging/mask_ops.h"
#include "imaging/png_encode.h"
#include "support/image_fixtures.h"
#include "support/temp_dir.h"

namespace segmentor {
namespace {

namespace fs = std::filesystem;

struct Outcome {
  int exit_code = -1;
  std::string output;
};

// `detector` is PEOPLE_DETECTOR_MODEL_NAME: none, or the toy test-detector.
Outcome run_segmentor(const std::string& args, const std::string& people_model,
                      const std::string& detector = "none") {
  const std::string command =
      std::string("env MODEL_CACHE=") + SEGMENTOR_TEST_MODELS_DIR +
      " FOREGROUND_SEG_MODEL_NAME=test-bright PEOPLE_SEG_MODEL_NAME=" + people_model +
      " PEOPLE_DETECTOR_MODEL_NAME=" + detector + " DEVICE=cpu " + SEGMENTOR_BINARY + " run " +
      args + " 2>&1";
  Outcome outcome;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return outcome;
  std::array<char, 4096> buf{};
  while (fgets(buf.data(), buf.size(), pipe) != nullptr) outcome.output += buf.data();
  const int status = pclose(pipe);
  outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return outcome;
}

class RunCommandE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("segmentor_run_e2e_" +
             std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fixtures::remove_tree(root_);
    in_ = root_ / "in";
    out_ = root_ / "out";
    fs::create_directories(in_);
  }
  void TearDown() override { fixtures::remove_tree(root_); }

  Mask product_mask(const std::string& id) {
    auto mask = read_mask_png(out_ / "masks_product" / "product_images" / (id + ".png"));
    EXPECT_TRUE(mask.ok()) << id << ": " << mask.status().to_string();
    return mask.ok() ? *mask : Mask{};
  }

  fs::path root_, in_, out_;
};

// The models run at 64x64, so edges blur by a pixel or two when resized back: compare by IoU
// and check points well inside and outside exactly.
void expect_rectangle(const Mask& mask, int w, int h, int x0, int y0, int x1, int y1,
                      const std::string& what) {
  ASSERT_EQ(mask.width, w) << what;
  ASSERT_EQ(mask.height, h) << what;
  const Mask expected = fixtures::rectangle_mask(w, h, x0, y0, x1, y1);
  EXPECT_GE(mask_iou(mask, expected), 0.9) << what;
  auto at = [&](int x, int y) { return mask.values[static_cast<std::size_t>(y * w + x)]; };
  EXPECT_EQ(at((x0 + x1) / 2, (y0 + y1) / 2), 255) << what << ": centre";
  EXPECT_EQ(at(0, 0), 0) << what << ": top-left corner";
  EXPECT_EQ(at(w - 1, h - 1), 0) << what << ": bottom-right corner";
  for (auto v : mask.values) ASSERT_TRUE(v == 0 || v == 255) << what << ": not binary";
}

TEST_F(RunCommandE2eTest, GoodFilesGetCorrectMasksAndTheBadOneIsNamed) {
  constexpr int kW = 128, kH = 96;
  const RgbImage rect = fixtures::red_rectangle_on_black(kW, kH, 32, 16, 96, 80);
  ASSERT_TRUE(fixtures::write_jpeg(in_ / "plain.jpg", rect).ok());
  ASSERT_TRUE(fixtures::write_png_with_alpha(in_ / "alpha.png", rect, Mask::zeros(kW, kH)).ok());
  ASSERT_TRUE(fixtures::write_bytes(in_ / "lossless.webp", fixtures::webp_bytes(rect)).ok());
  // Stored rotated: EXIF orientation 6 turns the stored kH x kW picture 90 degrees clockwise
  // into the kW x kH display picture with the rectangle at [32,96) x [16,80).
  const RgbImage stored = fixtures::red_rectangle_on_black(kH, kW, 16, kW - 96, 80, kW - 32);
  ASSERT_TRUE(fixtures::write_jpeg(in_ / "rotated.jpg", stored, 95, 6).ok());
  ASSERT_TRUE(fixtures::write_truncated_copy(in_ / "plain.jpg", in_ / "broken.jpg", 300).ok());

  const Outcome run =
      run_segmentor(in_.string() + " --out " + out_.string() + " --no-progress", "none");
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("done 4, failed 1"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("broken.jpg"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("test models in use"), std::string::npos) << run.output;
  // Issue 13 target 2 is "start to first mask": the summary says it, after the start-up.
  const auto first = run.output.find("first mask after ");
  ASSERT_NE(first, std::string::npos) << run.output;
  const auto startup = run.output.find("start-up ");
  ASSERT_NE(startup, std::string::npos) << run.output;
  EXPECT_LE(std::stod(run.output.substr(startup + 9)), std::stod(run.output.substr(first + 17)));

  for (const std::string id : {"plain", "alpha", "lossless", "rotated"}) {
    expect_rectangle(product_mask(id), kW, kH, 32, 16, 96, 80, id);
  }
  EXPECT_FALSE(fs::exists(out_ / "masks_product" / "product_images" / "broken.png"));
  // Nothing but finished masks in the output: no temp files left behind.
  for (const auto& entry : fs::recursive_directory_iterator(out_)) {
    if (entry.is_regular_file()) {
      EXPECT_EQ(entry.path().extension(), ".png") << entry.path();
    }
  }
}

TEST_F(RunCommandE2eTest, PeopleAreCutOutOfTheProduct) {
  constexpr int kW = 128, kH = 128;
  // Red = foreground only; yellow (red + green) = foreground and person.
  RgbImage image = fixtures::red_rectangle_on_black(kW, kH, 16, 16, 112, 112);
  fixtures::fill_rect(image, 64, 16, 112, 112, 255, 255, 0);
  ASSERT_TRUE(fixtures::write_png(in_ / "holding.png", image).ok());

  const Outcome run = run_segmentor(
      (in_ / "holding.png").string() + " --out " + out_.string() + " --no-progress --cutout",
      "test-person-prob");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  expect_rectangle(product_mask("holding"), kW, kH, 16, 16, 64, 112, "product");
  auto people = read_mask_png(out_ / "masks_people" / "product_images" / "holding.png");
  ASSERT_TRUE(people.ok()) << people.status().to_string();
  expect_rectangle(*people, kW, kH, 64, 16, 112, 112, "people");
  EXPECT_TRUE(fs::exists(out_ / "cutouts" / "holding.png"));
}

TEST_F(RunCommandE2eTest, PeopleCountOnlyInsideThePersonDetectorBoxes) {
  constexpr int kW = 128, kH = 128;
  // As above: the person-mask model marks the yellow block x 64..112, y 16..112. The toy detector
  // (tools/make_test_models.py, DETECTOR_CELLS) has boxes x 24..44, y 12..52 and x 40..56,
  // y 8..24 of its 64x64 input, i.e. x 48..88, y 24..104 and x 80..112, y 16..48 here.
  RgbImage image = fixtures::red_rectangle_on_black(kW, kH, 16, 16, 112, 112);
  fixtures::fill_rect(image, 64, 16, 112, 112, 255, 255, 0);
  ASSERT_TRUE(fixtures::write_png(in_ / "boxed.png", image).ok());
  const Outcome run =
      run_segmentor((in_ / "boxed.png").string() + " --out " + out_.string() + " --no-progress",
                    "test-person-prob", "test-detector");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("people found in 1 of 1 image"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("test-detector"), std::string::npos) << run.output;
  auto people = read_mask_png(out_ / "masks_people" / "product_images" / "boxed.png");
  ASSERT_TRUE(people.ok()) << people.status().to_string();
  const Mask product = product_mask("boxed");
  int wrong = 0;
  for (int y = 0; y < kH; ++y) {
    for (int x = 0; x < kW; ++x) {
      const bool yellow = x >= 64 && x < 112 && y >= 16 && y < 112;
      const bool boxed =
          (x >= 48 && x < 88 && y >= 24 && y < 104) || (x >= 80 && x < 112 && y >= 16 && y < 48);
      const bool foreground = x >= 16 && x < 112 && y >= 16 && y < 112;
      const auto i = static_cast<std::size_t>(y) * kW + x;
      wrong += (people->values[i] == 255) != (yellow && boxed);
      wrong += (product.values[i] == 255) != (foreground && !(yellow && boxed));
    }
  }
  EXPECT_EQ(wrong, 0);
}

TEST_F(RunCommandE2eTest, MissingModelIsAStartupErrorThatSaysHowToFetchIt) {
  ASSERT_TRUE(fixtures::write_png(in_ / "a.png", fixtures::solid_image(8, 8, 0, 0, 0)).ok());
  const Outcome run = run_segmentor(
      in_.string() + " --out " + out_.string() + " --foreground-model no-such-model", "none");
  EXPECT_EQ(run.exit_code, 2) << run.output;
  EXPECT_NE(run.output.find("no-such-model"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("fetch-models.sh"), std::string::npos) << run.output;
}

TEST_F(RunCommandE2eTest, BadConfigurationNamesTheVariable) {
  const std::string command =
      std::string("env USE_FP16=maybe ") + SEGMENTOR_BINARY + " run " + in_.string() + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  std::array<char, 1024> buf{};
  while (fgets(buf.data(), buf.size(), pipe) != nullptr) output += buf.data();
  const int status = pclose(pipe);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(output.find("USE_FP16"), std::string::npos) << output;
  EXPECT_NE(output.find("maybe"), std::string::npos) << output;
}

}  // namespace
}  // namespace segmentor
