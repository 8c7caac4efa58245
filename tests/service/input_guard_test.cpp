#include "service/input_guard.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "support/temp_dir.h"

namespace segmentor::service {
namespace {

namespace fs = std::filesystem;

class InputGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_ / "in" / "sub");
    fs::create_directories(dir_ / "in-evil");
    fs::create_directories(dir_ / "outside");
    std::ofstream(dir_ / "in" / "sub" / "a.jpg") << "x";
    std::ofstream(dir_ / "outside" / "secret.jpg") << "x";
    std::ofstream(dir_ / "in-evil" / "b.jpg") << "x";
    auto guard = InputGuard::create({dir_ / "in"});
    ASSERT_TRUE(guard.ok()) << guard.status().to_string();
    guard_.emplace(std::move(guard).value());
  }
  fixtures::TempDir dir_{"input-guard"};
  std::optional<InputGuard> guard_;
};

TEST_F(InputGuardTest, AcceptsAFileInsideARoot) {
  auto resolved = guard_->resolve((dir_ / "in" / "sub" / "a.jpg").string());
  ASSERT_TRUE(resolved.ok()) << resolved.status().to_string();
  EXPECT_EQ(*resolved, fs::canonical(dir_ / "in" / "sub" / "a.jpg"));
}

TEST_F(InputGuardTest, AcceptsAMissingFileInsideARootSoDecodeReportsIt) {
  EXPECT_TRUE(guard_->resolve((dir_ / "in" / "missing.jpg").string()).ok());
}

TEST_F(InputGuardTest, RejectsPathsOutsideTheRoots) {
  for (const fs::path& path :
       {dir_ / "outside" / "secret.jpg", dir_ / "in-evil" / "b.jpg",
        dir_ / "in" / ".." / "outside" / "secret.jpg", fs::path("/etc/passwd")}) {
    auto resolved = guard_->resolve(path.string());
    ASSERT_FALSE(resolved.ok()) << path;
    EXPECT_EQ(resolved.status().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(resolved.status().message().find("outside the input roots"), std::string::npos);
  }
}

TEST_F(InputGuardTest, RejectsASymlinkThatLeadsOutside) {
  fs::create_symlink(dir_ / "outside" / "secret.jpg", dir_ / "in" / "link.jpg");
  fs::create_directory_symlink(dir_ / "outside", dir_ / "in" / "linkdir");
  EXPECT_FALSE(guard_->resolve((dir_ / "in" / "link.jpg").string()).ok());
  EXPECT_FALSE(guard_->resolve((dir_ / "in" / "linkdir" / "secret.jpg").string()).ok());
}

TEST_F(InputGuardTest, AcceptsASymlinkThatStaysInside) {
  fs::create_symlink(dir_ / "in" / "sub" / "a.jpg", dir_ / "in" / "alias.jpg");
  auto resolved = guard_->resolve((dir_ / "in" / "alias.jpg").string());
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(*resolved, fs::canonical(dir_ / "in" / "sub" / "a.jpg"));
}

TEST_F(InputGuardTest, RejectsRelativeAndEmptyPaths) {
  EXPECT_FALSE(guard_->resolve("in/sub/a.jpg").ok());
  EXPECT_FALSE(guard_->resolve("").ok());
  EXPECT_FALSE(guard_->resolve(std::string_view("/a\0b", 4)).ok());
}

TEST(InputGuardCreate, RejectsRelativeOrNoRoots) {
  EXPECT_FALSE(InputGuard::create({}).ok());
  EXPECT_FALSE(InputGuard::create({"relative/root"}).ok());
}

TEST(IsWithin, ComparesWholeComponents) {
  EXPECT_TRUE(is_within("/data/in/a.jpg", "/data/in"));
  EXPECT_TRUE(is_within("/data/in", "/data/in"));
  EXPECT_TRUE(is_within("/data/in/a.jpg", "/data/in/"));
  EXPECT_FALSE(is_within("/data/in-evil/a.jpg", "/data/in"));
  EXPECT_FALSE(is_within("/data", "/data/in"));
}

}  // namespace
}  // namespace segmentor::service

namespace segmentor::service {
namespace {

// Issue 11, item 8: the path is checked when the message arrives and read later. A link swapped
// in between (for the file, or for a directory on the way) must not be followed out of the roots.
TEST_F(InputGuardTest, ReadsTheCheckedFileBeneathItsRoot) {
  auto resolved = guard_->resolve((dir_ / "in" / "sub" / "a.jpg").string());
  ASSERT_TRUE(resolved.ok());
  auto bytes = guard_->read(*resolved, ReadOptions{});
  ASSERT_TRUE(bytes.ok()) << bytes.status().to_string();
  EXPECT_EQ(bytes->size(), 1u);
}

TEST_F(InputGuardTest, AFileSwappedForALinkAfterTheCheckIsNotFollowed) {
  auto resolved = guard_->resolve((dir_ / "in" / "sub" / "a.jpg").string());
  ASSERT_TRUE(resolved.ok());
  fs::remove(dir_ / "in" / "sub" / "a.jpg");
  fs::create_symlink(dir_ / "outside" / "secret.jpg", dir_ / "in" / "sub" / "a.jpg");
  auto bytes = guard_->read(*resolved, ReadOptions{});
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().code(), ErrorCode::kInvalidArgument) << bytes.status().to_string();
}

TEST_F(InputGuardTest, ADirectorySwappedForALinkAfterTheCheckIsNotFollowed) {
  auto resolved = guard_->resolve((dir_ / "in" / "sub" / "a.jpg").string());
  ASSERT_TRUE(resolved.ok());
  fs::remove_all(dir_ / "in" / "sub");
  std::ofstream(dir_ / "outside" / "a.jpg") << "secret";
  fs::create_directory_symlink(dir_ / "outside", dir_ / "in" / "sub");
  auto bytes = guard_->read(*resolved, ReadOptions{});
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().code(), ErrorCode::kInvalidArgument) << bytes.status().to_string();
}

TEST_F(InputGuardTest, ReadRefusesPathsOutsideTheRoots) {
  EXPECT_FALSE(guard_->read(dir_ / "outside" / "secret.jpg", ReadOptions{}).ok());
  EXPECT_FALSE(guard_->read(dir_ / "in" / ".." / "outside" / "secret.jpg", ReadOptions{}).ok());
}

}  // namespace
}  // namespace segmentor::service
