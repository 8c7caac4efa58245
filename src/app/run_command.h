// `segmentor run PATH... --out DIR`: segment a folder of images on this machine, no services.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "pipeline/mask_paths.h"

namespace segmentor {

struct RunOptions {
  std::vector<std::filesystem::path> inputs;
  std::filesystem::path out_dir = "out";
  bool cutout = false;                        // also write RGBA cut-outs of the product
  AssetKind kind = AssetKind::kProductImage;  // which sub-folder the masks go to
  std::string device;                         // overrides DEVICE when not empty
  bool progress_bar = true;                   // a bar when stderr is a terminal
};

// Returns the process exit code: 0 all images done, 1 some failed, 2 nothing could start
// (bad inputs, models missing). Prints progress to stderr and the summary to stdout.
int run_images(const RunOptions& options, const Config& config);

}  // namespace segmentor
