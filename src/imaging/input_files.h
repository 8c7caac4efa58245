// Expands the paths given to `segmentor run` into image files and asset ids.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "common/status.h"

namespace segmentor {

struct InputFile {
  std::filesystem::path path;
  std::string id;  // mask file stem: the file's stem, made unique with "-2", "-3", ...
};

// Files are taken as given (the decoder sniffs the format). Folders are walked recursively for
// .jpg/.jpeg/.png/.webp (any case), skipping hidden entries, in sorted order so runs are
// repeatable. A path that does not exist is an error naming it.
Result<std::vector<InputFile>> collect_input_files(const std::vector<std::filesystem::path>& paths);

}  // namespace segmentor
