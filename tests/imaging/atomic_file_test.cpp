#include "imaging/atomic_file.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/image_fixtures.h"
#include "support/temp_dir.h"

namespace segmentor {
namespace {

std::vector<std::uint8_t> bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string text(std::filesystem::file_size(path), '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  return text;
}

std::vector<std::string> names_in(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Restores the process umask when the test ends.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

TEST(AtomicFileTest, CreatesParentsAndGroupReadableFileDespiteStrictUmask) {
  fixtures::TempDir dir;
  ScopedUmask umask(077);
  const auto target = dir / "masks_product" / "video_frames" / "f1.png";
  ASSERT_TRUE(write_file_atomically(target, bytes_of("first")).ok());
  EXPECT_EQ(read_text(target), "first");
  struct stat st {};
  ASSERT_EQ(::stat(target.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0644u);
  EXPECT_EQ(names_in(target.parent_path()), std::vector<std::string>{"f1.png"});
}

TEST(AtomicFileTest, OverwritesAndLeavesNoTempFiles) {
  fixtures::TempDir dir;
  const auto target = dir / "a.png";
  ASSERT_TRUE(write_file_atomically(target, bytes_of("old content that is longer")).ok());
  ASSERT_TRUE(write_file_atomically(target, bytes_of("new")).ok());
  EXPECT_EQ(read_text(target), "new");
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"a.png"});
  const std::vector<std::uint8_t> empty;
  ASSERT_TRUE(write_file_atomically(target, empty).ok());
  EXPECT_EQ(std::filesystem::file_size(target), 0u);
}

TEST(AtomicFileTest, ParentIsAFileFailsCleanly) {
  fixtures::TempDir dir;
  ASSERT_TRUE(write_file_atomically(dir / "blocker", bytes_of("x")).ok());
  const Status status = write_file_atomically(dir / "blocker" / "a.png", bytes_of("data"));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), ErrorCode::kIo);
  EXPECT_EQ(read_text(dir / "blocker"), "x");
}

TEST(AtomicFileTest, RenameFailureRemovesTempFile) {
  fixtures::TempDir dir;
  // The target is a non-empty directory, so the final rename fails after the temp file exists.
  std::filesystem::create_directories(dir / "a.png" / "inside");
  const Status status = write_file_atomically(dir / "a.png", bytes_of("data"));
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), ErrorCode::kIo);
  EXPECT_NE(status.message().find("a.png"), std::string::npos);
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"a.png"});
  EXPECT_TRUE(std::filesystem::is_directory(dir / "a.png" / "inside"));
}

TEST(AtomicFileTest, WriteFailureKeepsOldFile) {
  // A file-size limit makes write() fail part-way, even for root.
  fixtures::TempDir dir;
  const auto target = dir / "a.png";
  ASSERT_TRUE(write_file_atomically(target, bytes_of("old")).ok());
  rlimit old_limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto* old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old_limit;
  small.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  const Status status = write_file_atomically(target, std::vector<std::uint8_t>(4096, 7));
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), ErrorCode::kIo);
  EXPECT_EQ(read_text(target), "old");
  EXPECT_EQ(names_in(dir.path()), std::vector<std::string>{"a.png"});
}

TEST(AtomicFileTest, ReadOnlyDirectoryKeepsOldFile) {
  if (::geteuid() == 0) {
    GTEST_SKIP() << "root ignores directory permissions; WriteFailureKeepsOldFile covers this";
  }
  fixtures::TempDir dir;
  const auto target = dir / "locked" / "a.png";
  ASSERT_TRUE(write_file_atomically(target, bytes_of("old")).ok());
  ASSERT_EQ(::chmod(target.parent_path().c_str(), 0555), 0);
  const Status status = write_file_atomically(target, bytes_of("new"));
  ::chmod(target.parent_path().c_str(), 0755);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.code(), ErrorCode::kIo);
  EXPECT_EQ(read_text(target), "old");
  EXPECT_EQ(names_in(target.parent_path()), std::vector<std::string>{"a.png"});
}

// Issue 11, item 8: a directory below the data root replaced by a symbolic link must not carry
// the write elsewhere.
TEST(AtomicFileTest, BeneathARootASymlinkedDirectoryIsNotFollowed) {
  fixtures::TempDir dir;
  const auto root = dir / "data";
  const auto elsewhere = dir / "elsewhere";
  std::filesystem::create_directories(root / "masks_product");
  std::filesystem::create_directories(elsewhere);
  std::filesystem::create_directory_symlink(elsewhere, root / "masks_product" / "product_images");
  const std::vector<std::uint8_t> bytes = {1, 2, 3};
  const auto target = root / "masks_product" / "product_images" / "a.png";
  // Without a root the link is followed (the old behaviour, still right for `segmentor run`).
  ASSERT_TRUE(write_file_atomically(target, bytes).ok());
  EXPECT_TRUE(std::filesystem::exists(elsewhere / "a.png"));
  std::filesystem::remove(elsewhere / "a.png");
  const Status status = write_file_atomically(target, bytes, root);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(status.code(), ErrorCode::kIo);
  EXPECT_TRUE(std::filesystem::is_empty(elsewhere)) << "written through the link";
}

TEST(AtomicFileTest, BeneathARootMissingDirectoriesAreCreated) {
  fixtures::TempDir dir;
  const auto root = dir / "data";
  const auto target = root / "masks_foreground" / "video_frames" / "f.png";
  const std::vector<std::uint8_t> bytes = {7};
  ASSERT_TRUE(write_file_atomically(target, bytes, root).ok());
  std::ifstream in(target, std::ios::binary);
  EXPECT_EQ(in.get(), 7);
  EXPECT_FALSE(write_file_atomically(dir / "outside.png", bytes, root).ok());
}

// `segmentor run --out out/check` gives a relative root and absolute mask paths (or the other way
// round): both name the same directory and the write lands below it.
TEST(AtomicFileTest, BeneathARelativeRootAbsoluteTargetsAreBelowIt) {
  fixtures::TempDir dir;
  const auto previous = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  const std::filesystem::path root = "out/check";
  const auto target = std::filesystem::absolute(root) / "masks_product" / "a.png";
  const std::vector<std::uint8_t> bytes = {9};
  const Status absolute_target = write_file_atomically(target, bytes, root);
  const Status relative_target = write_file_atomically(root / "masks_people" / "b.png", bytes,
                                                       std::filesystem::absolute(root));
  const Status outside = write_file_atomically("elsewhere/c.png", bytes, root);
  std::filesystem::current_path(previous);
  EXPECT_TRUE(absolute_target.ok()) << absolute_target.to_string();
  EXPECT_TRUE(relative_target.ok()) << relative_target.to_string();
  EXPECT_TRUE(std::filesystem::exists(target));
  EXPECT_FALSE(outside.ok());
}

}  // namespace
}  // namespace segmentor
