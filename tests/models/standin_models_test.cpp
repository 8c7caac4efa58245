// tools/make_standin_models.py --small: the stand-ins load through the real loader, produce masks
// of the source's size, and say everywhere that they are stand-ins.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "models/manifest.h"
#include "models/model_loader.h"
#include "support/temp_dir.h"

namespace segmentor {
namespace {

TEST(StandinModels, SmallStandinsLoadAndSegmentAndAreLabelled) {
  fixtures::TempDir dir;
  const std::string command = std::string(SEGMENTOR_PYTHON) + " " + SEGMENTOR_SOURCE_DIR +
                              "/tools/make_standin_models.py --small --out " + dir.path().string() +
                              " > /dev/null 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;

  RgbImage image{320, 180, std::vector<std::uint8_t>(320 * 180 * 3, 90)};
  ModelOptions options;
  options.device = "cpu";
  options.cpu_threads = 2;
  options.freeze = false;  // freezing is tested with the models; here it only costs seconds
  for (const char* name : {"rmbg2-small-standin", "yolo11l-seg-small-standin"}) {
    const auto pt = dir / (std::string(name) + ".pt");
    auto manifest = read_manifest(manifest_path_for(pt));
    ASSERT_TRUE(manifest.ok()) << manifest.status().to_string();
    EXPECT_FALSE(manifest->is_test_model);
    EXPECT_NE(manifest->source.find("generated stand-in, not a real model"), std::string::npos);
    auto model = load_mask_model(pt, options);
    ASSERT_TRUE(model.ok()) << model.status().to_string();
    EXPECT_EQ((*model)->info().name, name);
    auto mask = (*model)->segment(image);
    ASSERT_TRUE(mask.ok()) << mask.status().to_string();
    EXPECT_EQ(mask->width, 320);
    EXPECT_EQ(mask->height, 180);
  }
}

}  // namespace
}  // namespace segmentor
