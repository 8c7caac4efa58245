#include "imaging/input_files.h"

#include <algorithm>
#include <cctype>
#include <set>
#include <system_error>

namespace segmentor {

namespace {

bool has_image_extension(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".webp";
}

bool is_hidden(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name.front() == '.';
}

Status walk_folder(const std::filesystem::path& root, std::vector<std::filesystem::path>& out) {
  std::error_code ec;
  std::vector<std::filesystem::path> found;
  auto it = std::filesystem::recursive_directory_iterator(
      root, std::filesystem::directory_options::skip_permission_denied, ec);
  if (ec) return io_error(root.string() + ": " + ec.message());
  for (auto end = std::filesystem::recursive_directory_iterator(); it != end; it.increment(ec)) {
    if (ec) return io_error(root.string() + ": " + ec.message());
    if (is_hidden(it->path())) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && has_image_extension(it->path())) found.push_back(it->path());
  }
  std::sort(found.begin(), found.end());
  out.insert(out.end(), found.begin(), found.end());
  return Status::Ok();
}

}  // namespace

Result<std::vector<InputFile>> collect_input_files(
    const std::vector<std::filesystem::path>& paths) {
  std::vector<std::filesystem::path> files;
  for (const auto& path : paths) {
    std::error_code ec;
    const auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status)) {
      return not_found(path.string() + ": no such file or folder");
    }
    if (std::filesystem::is_directory(status)) {
      SEGMENTOR_RETURN_IF_ERROR(walk_folder(path, files));
    } else {
      files.push_back(path);
    }
  }
  std::vector<InputFile> inputs;
  std::set<std::string> used;
  for (auto& file : files) {
    const std::string stem = file.stem().string();
    std::string id = stem;
    for (int n = 2; used.count(id) != 0; ++n) id = stem + "-" + std::to_string(n);
    used.insert(id);
    inputs.push_back({std::move(file), std::move(id)});
  }
  return inputs;
}

}  // namespace segmentor
