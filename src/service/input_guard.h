// InputGuard: the check that keeps `local_path` values from events inside the configured input
// roots (CONTRACT §4: paths from events are untrusted, a path outside the roots is rejected,
// never followed).
#pragma once

#include <filesystem>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace segmentor::service {

// Note [Resolving input paths]
// A `local_path` is accepted when it is absolute and its resolved form — every symlink followed,
// "." and ".." collapsed (std::filesystem::weakly_canonical, i.e. realpath for the part that
// exists) — lies inside the resolved form of one input root, compared component by component
// (so /data/in-evil is not inside /data/in). The resolved path is what the engine then opens, so
// a link swapped after the check cannot point it elsewhere without passing the check again on a
// redelivery. A path whose file does not exist resolves lexically and fails later, at decode,
// with kNotFound.

// Immutable after Create(); thread-safe.
class InputGuard {
 public:
  // `roots` must be absolute; they are resolved once here (they may not exist yet).
  static Result<InputGuard> Create(const std::vector<std::filesystem::path>& roots);

  // The resolved path, or kInvalidArgument naming the problem (relative, outside the roots).
  Result<std::filesystem::path> resolve(std::string_view local_path) const;

  const std::vector<std::filesystem::path>& roots() const { return roots_; }

 private:
  explicit InputGuard(std::vector<std::filesystem::path> roots) : roots_(std::move(roots)) {}
  std::vector<std::filesystem::path> roots_;
};

// True when `path` equals `root` or lies below it (both already normalised).
bool is_within(const std::filesystem::path& path, const std::filesystem::path& root);

}  // namespace segmentor::service
