#include "service/input_guard.h"

#include <string>
#include <system_error>

namespace segmentor::service {

namespace {

Result<std::filesystem::path> canonical_form(const std::filesystem::path& path) {
  std::error_code error;
  std::filesystem::path resolved = std::filesystem::weakly_canonical(path, error);
  if (error) {
    return invalid_argument("cannot resolve " + path.string() + ": " + error.message());
  }
  return resolved.lexically_normal();
}

}  // namespace

bool is_within(const std::filesystem::path& path, const std::filesystem::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    // A trailing separator of the root shows up as an empty last component.
    if (r->empty() && std::next(r) == root.end()) return true;
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

Result<InputGuard> InputGuard::create(const std::vector<std::filesystem::path>& roots) {
  if (roots.empty()) return invalid_argument("no input roots configured");
  std::vector<std::filesystem::path> resolved;
  for (const auto& root : roots) {
    if (!root.is_absolute())
      return invalid_argument("input root is not absolute: " + root.string());
    SEGMENTOR_ASSIGN_OR_RETURN(std::filesystem::path canonical, canonical_form(root));
    resolved.push_back(std::move(canonical));
  }
  return InputGuard(std::move(resolved));
}

Result<std::filesystem::path> InputGuard::resolve(std::string_view local_path) const {
  if (local_path.empty()) return invalid_argument("local_path is empty");
  if (local_path.find('\0') != std::string_view::npos) {
    return invalid_argument("local_path contains a NUL byte");
  }
  const std::filesystem::path path{std::string(local_path)};
  if (!path.is_absolute()) {
    return invalid_argument("local_path is not absolute: " + std::string(local_path));
  }
  SEGMENTOR_ASSIGN_OR_RETURN(std::filesystem::path resolved, canonical_form(path));
  for (const auto& root : roots_) {
    if (is_within(resolved, root)) return resolved;
  }
  std::string message = "local_path " + std::string(local_path);
  if (resolved != path) message += " (resolves to " + resolved.string() + ")";
  message += " is outside the input roots";
  return invalid_argument(std::move(message));
}

Result<std::vector<std::uint8_t>> InputGuard::read(const std::filesystem::path& resolved,
                                                   const ReadOptions& options) const {
  for (const auto& root : roots_) {
    if (is_within(resolved, root)) {
      return read_file_bytes_beneath(root, resolved.lexically_relative(root), options);
    }
  }
  return invalid_argument(resolved.string() + " is outside the input roots");
}

}  // namespace segmentor::service
