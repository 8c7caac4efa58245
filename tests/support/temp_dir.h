// A scratch directory for one test, removed with everything in it when the object goes away.
// Not thread-safe to share; each test makes its own.
#pragma once

#include <filesystem>
#include <string_view>

namespace segmentor::fixtures {

class TempDir {
 public:
  // Creates <system temp>/<prefix>-<pid>-<counter>-<random>; aborts the test binary if that
  // fails, since no test can run without it.
  explicit TempDir(std::string_view prefix = "segmentor-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::filesystem::path& child) const {
    return path_ / child;
  }

 private:
  std::filesystem::path path_;
};

// Deletes a file or folder tree; missing paths are fine. See Note [No std::filesystem::remove_all
// next to LibTorch] in temp_dir.cpp.
void remove_tree(const std::filesystem::path& path);

}  // namespace segmentor::fixtures
