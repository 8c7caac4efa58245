#include "pipeline/mask_writer.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "fake_mask_model.h"
#include "imaging/png_encode.h"
#include "support/temp_dir.h"

namespace segmentor {
namespace {

namespace fs = std::filesystem;
using testing::rect_mask;

class MaskWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ =
        fs::temp_directory_path() /
        ("mask_writer_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fixtures::remove_tree(root_);
  }
  void TearDown() override { fixtures::remove_tree(root_); }
  MaskPaths paths(const std::string& id) {
    return *mask_paths_for(MaskLayout{root_}, AssetKind::kVideoFrame, id);
  }
  fs::path root_;
};

TEST_F(MaskWriterTest, WritesAllThreeMasksExactly) {
  AssetMasks masks{rect_mask(6, 4, 0, 0, 4, 4), rect_mask(6, 4, 2, 0, 6, 4), true,
                   rect_mask(6, 4, 0, 0, 2, 4)};
  const auto p = paths("f1");
  ASSERT_TRUE(write_masks(p, masks).ok());
  for (const auto& [path, expected] :
       {std::pair{p.foreground, masks.foreground}, std::pair{p.people, masks.people},
        std::pair{p.product, masks.product}}) {
    auto read = read_mask_png(path);
    ASSERT_TRUE(read.ok()) << path << ": " << read.status().to_string();
    EXPECT_EQ(read->width, 6);
    EXPECT_EQ(read->height, 4);
    EXPECT_EQ(read->values, expected.values) << path;
  }
}

TEST_F(MaskWriterTest, NoPeopleFileWhenNobodyWasFoundAndAStaleOneIsRemoved) {
  const auto p = paths("f2");
  AssetMasks with_people{rect_mask(4, 4, 0, 0, 4, 4), rect_mask(4, 4, 0, 0, 1, 1), true,
                         rect_mask(4, 4, 1, 1, 4, 4)};
  ASSERT_TRUE(write_masks(p, with_people).ok());
  ASSERT_TRUE(fs::exists(p.people));

  AssetMasks without{rect_mask(4, 4, 0, 0, 4, 4), Mask::zeros(4, 4), false,
                     rect_mask(4, 4, 0, 0, 4, 4)};
  ASSERT_TRUE(write_masks(p, without).ok());
  EXPECT_FALSE(fs::exists(p.people));
  EXPECT_TRUE(fs::exists(p.product));
}

TEST_F(MaskWriterTest, CutoutIsRgbaWithTheProductAsAlpha) {
  RgbImage image{2, 1, {10, 20, 30, 40, 50, 60}};
  const Mask product = rect_mask(2, 1, 1, 0, 2, 1);
  const fs::path out = root_ / "cutouts" / "c.png";
  ASSERT_TRUE(write_cutout(out, image, product).ok());
  EXPECT_TRUE(fs::exists(out));
  EXPECT_GT(fs::file_size(out), 0U);
}

}  // namespace
}  // namespace segmentor
