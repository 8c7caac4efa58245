// Whole-file reads with errors phrased for the log ("<path>: ...").
//
// Thread-safety: stateless, callable from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "common/status.h"

namespace segmentor {

struct ReadOptions {
  // Larger files are refused (kTooLarge) before any buffer is allocated.
  std::int64_t max_bytes = std::int64_t{1} << 30;
  // False: a symbolic link as the last component is refused (kInvalidArgument) instead of
  // followed — for paths already resolved by a guard, where a link can only be a swap.
  bool follow_symlinks = true;
};

// The file's bytes. kNotFound when it (or a parent) does not exist; kInvalidArgument when it is
// not a regular file (a directory, a FIFO, a device: refused before any read, so a FIFO never
// blocks the caller) or a refused link; kTooLarge over `max_bytes`, or when the host cannot
// allocate the buffer (the same file would not fit next time either); kIo when it cannot be read.
Result<std::vector<std::uint8_t>> read_file_bytes(const std::filesystem::path& path,
                                                  const ReadOptions& options = {});

// As read_file_bytes, for `root / relative`, reached from a descriptor of `root` without
// following any symbolic link below it and without "..": Note [Opening beneath a root].
// kInvalidArgument for a link met on the way (or "..").
Result<std::vector<std::uint8_t>> read_file_bytes_beneath(const std::filesystem::path& root,
                                                          const std::filesystem::path& relative,
                                                          const ReadOptions& options = {});

}  // namespace segmentor
