#include "imaging/input_files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/temp_dir.h"

namespace segmentor {
namespace {

namespace fs = std::filesystem;

class InputFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() /
            ("input_files_test_" +
             std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fixtures::remove_tree(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fixtures::remove_tree(root_); }
  void touch(const fs::path& rel) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << "x";
  }
  fs::path root_;
};

TEST_F(InputFilesTest, WalksFoldersRecursivelyInSortedOrderForImageExtensions) {
  touch("b.jpg");
  touch("a.PNG");
  touch("sub/c.webp");
  touch("sub/deeper/d.jpeg");
  touch("notes.txt");
  auto files = collect_input_files({root_});
  ASSERT_TRUE(files.ok()) << files.status().to_string();
  ASSERT_EQ(files->size(), 4U);
  EXPECT_EQ((*files)[0].path, root_ / "a.PNG");
  EXPECT_EQ((*files)[1].path, root_ / "b.jpg");
  EXPECT_EQ((*files)[2].path, root_ / "sub/c.webp");
  EXPECT_EQ((*files)[3].path, root_ / "sub/deeper/d.jpeg");
  EXPECT_EQ((*files)[0].id, "a");
}

TEST_F(InputFilesTest, SkipsHiddenFilesAndFolders) {
  touch(".hidden.jpg");
  touch(".cache/e.jpg");
  touch("ok.jpg");
  auto files = collect_input_files({root_});
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 1U);
  EXPECT_EQ((*files)[0].id, "ok");
}

TEST_F(InputFilesTest, ExplicitFilesAreTakenWhateverTheirExtension) {
  touch("scan.bin");
  auto files = collect_input_files({root_ / "scan.bin"});
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 1U);
  EXPECT_EQ((*files)[0].id, "scan");
}

TEST_F(InputFilesTest, SameStemsGetUniqueIds) {
  touch("x/photo.jpg");
  touch("y/photo.jpg");
  touch("photo.png");
  auto files = collect_input_files({root_});
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 3U);
  EXPECT_EQ((*files)[0].id, "photo");
  EXPECT_EQ((*files)[1].id, "photo-2");
  EXPECT_EQ((*files)[2].id, "photo-3");
}

TEST_F(InputFilesTest, AMissingPathIsNamed) {
  auto files = collect_input_files({root_ / "nope"});
  ASSERT_FALSE(files.ok());
  EXPECT_EQ(files.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(files.status().message().find("nope"), std::string::npos);
}

}  // namespace
}  // namespace segmentor
