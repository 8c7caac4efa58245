// Whole-file reads with errors phrased for the log ("<path>: ...").
//
// Thread-safety: stateless, callable from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "common/status.h"

namespace segmentor {

// The file's bytes. kNotFound when it (or a parent) does not exist; kIo when it is not a regular
// file or cannot be read.
Result<std::vector<std::uint8_t>> read_file_bytes(const std::filesystem::path& path);

}  // namespace segmentor
