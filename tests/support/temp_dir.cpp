#include "support/temp_dir.h"

#include <ftw.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <system_error>

namespace segmentor::fixtures {

TempDir::TempDir(std::string_view prefix) {
  static std::atomic<unsigned> counter{0};
  std::random_device random;
  std::error_code ec;
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string name(prefix);
    name += "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
            std::to_string(random());
    path_ = std::filesystem::temp_directory_path() / name;
    if (std::filesystem::create_directory(path_, ec)) return;
  }
  std::fprintf(stderr, "TempDir: cannot create %s: %s\n", path_.c_str(), ec.message().c_str());
  std::abort();
}

TempDir::~TempDir() {
  std::error_code ec;
  // Tests may leave read-only folders behind; make them writable so removal succeeds.
  for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec)) {
      std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::add, ec);
    }
  }
  std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::add, ec);
  remove_tree(path_);
}

// Note [No std::filesystem::remove_all next to LibTorch]: the pip LibTorch 2.11 of the GPU
// machine exports its own copy of std::filesystem::remove_all from libtorch.so; a test binary that
// links LibTorch can bind to it and crash (a call through a null pointer, seen on the H100 machine
// on 2026-11-27). nftw() from libc has no such twin.
void remove_tree(const std::filesystem::path& path) {
  nftw(
      path.c_str(),
      [](const char* entry, const struct stat*, int, struct FTW*) { return ::remove(entry); }, 16,
      FTW_DEPTH | FTW_PHYS);
}

}  // namespace segmentor::fixtures
