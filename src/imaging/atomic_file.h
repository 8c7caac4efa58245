// Crash-safe file replacement for mask files and anything else the worker publishes.
//
// Thread-safety: concurrent calls are safe, including for the same target (the last rename
// wins; each call uses its own uniquely named temp file).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

#include "common/status.h"

namespace segmentor {

// Permissions of every file written here: readable by group and others, whatever the umask
// (the Python service left masks 0600, unreadable by the services that consume them).
inline constexpr unsigned kAtomicFileMode = 0644;

// Writes `bytes` to `target` so that readers see either the old file or the complete new one,
// never a partial file: creates missing parent directories, writes a uniquely named temp file
// (O_EXCL) next to the target, fsyncs it, sets mode 0644, renames it over the target and fsyncs
// the directory. On failure before the rename the temp file is removed and the target is left
// untouched. kIo on any filesystem error, with the path and errno text in the message. If only
// the final directory fsync fails, the new content is in place but kIo is still returned: its
// durability is not guaranteed, so callers must not report the write as committed.
//
// With `beneath` (a trusted root containing `target`), no symbolic link below that root is
// followed: the directories on the way are created and entered without following links, and a
// link where a directory should be is kIo (Note [Writing beneath a root] in atomic_file.cpp).
Status write_file_atomically(const std::filesystem::path& target,
                             std::span<const std::uint8_t> bytes,
                             const std::filesystem::path& beneath = {});

}  // namespace segmentor
