// InputGuard: the check that keeps `local_path` values from events inside the configured input
// roots (CONTRACT §4: paths from events are untrusted, a path outside the roots is rejected,
// never followed).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "imaging/file_io.h"

namespace segmentor::service {

// Note [Resolving input paths]
// A `local_path` is accepted when it is absolute and its resolved form — every symlink followed,
// "." and ".." collapsed (std::filesystem::weakly_canonical, i.e. realpath for the part that
// exists) — lies inside the resolved form of one input root, compared component by component
// (so /data/in-evil is not inside /data/in). The engine later reads the resolved path with read(),
// which walks down from the root's descriptor without following any link (Note [Opening beneath
// a root] in imaging/file_io.cpp): a link swapped in after the check is refused, not followed, so
// nothing outside the roots is ever opened. A path whose file does not exist resolves lexically
// and fails later, at read, with kNotFound.

// Immutable after create(); thread-safe.
class InputGuard {
 public:
  // `roots` must be absolute; they are resolved once here (they may not exist yet).
  static Result<InputGuard> create(const std::vector<std::filesystem::path>& roots);

  // The resolved path, or kInvalidArgument naming the problem (relative, outside the roots).
  Result<std::filesystem::path> resolve(std::string_view local_path) const;

  // Reads a path resolve() returned, beneath its root, following no link (see the Note).
  Result<std::vector<std::uint8_t>> read(const std::filesystem::path& resolved,
                                         const ReadOptions& options) const;

  const std::vector<std::filesystem::path>& roots() const { return roots_; }

 private:
  explicit InputGuard(std::vector<std::filesystem::path> roots) : roots_(std::move(roots)) {}
  std::vector<std::filesystem::path> roots_;
};

// True when `path` equals `root` or lies below it (both already normalised).
bool is_within(const std::filesystem::path& path, const std::filesystem::path& root);

}  // namespace segmentor::service
