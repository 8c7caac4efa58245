#include "imaging/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <string>

namespace segmentor {
namespace {

// Closes a POSIX descriptor on scope exit.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

std::string errno_message(const std::filesystem::path& path, std::string_view what, int err) {
  std::string message = path.string();
  message.append(": ").append(what).append(": ").append(std::strerror(err));
  return message;
}

// Reads the regular file open on `fd` (which it closes); `path` names it in errors.
Result<std::vector<std::uint8_t>> read_open_file(int fd, const std::filesystem::path& path,
                                                 const ReadOptions& options) {
  FdCloser closer(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return io_error(errno_message(path, "cannot stat", errno));
  if (!S_ISREG(st.st_mode)) return invalid_argument(path.string() + ": not a regular file");
  if (st.st_size > options.max_bytes) {
    return too_large(path.string() + ": " + std::to_string(st.st_size) + " bytes, more than the " +
                     std::to_string(options.max_bytes) + " accepted");
  }

  std::vector<std::uint8_t> bytes;
  try {
    bytes.resize(static_cast<std::size_t>(st.st_size));
  } catch (const std::bad_alloc&) {
    return too_large(path.string() + ": cannot allocate " + std::to_string(st.st_size) +
                     " bytes to read the file");
  }
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error(errno_message(path, "read failed", errno));
    }
    if (n == 0) break;  // the file shrank while we read it: decode what is there
    done += static_cast<std::size_t>(n);
  }
  bytes.resize(done);
  return bytes;
}

Status open_error(const std::filesystem::path& path, int err, bool following) {
  if (err == ENOENT || err == ENOTDIR) return not_found(path.string() + ": no such file");
  if (err == ELOOP && !following) {
    return invalid_argument(path.string() + ": is or passes through a symbolic link, not followed");
  }
  return io_error(errno_message(path, "cannot open", err));
}

// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever. It has no
// effect on a regular file, the only kind read_open_file reads.
constexpr int kReadFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;

}  // namespace

Result<std::vector<std::uint8_t>> read_file_bytes(const std::filesystem::path& path,
                                                  const ReadOptions& options) {
  const int fd = ::open(path.c_str(), kReadFlags | (options.follow_symlinks ? 0 : O_NOFOLLOW));
  if (fd < 0) return open_error(path, errno, options.follow_symlinks);
  return read_open_file(fd, path, options);
}

// Note [Opening beneath a root]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// The input guard checks a path when its message arrives; the engine opens it later. Opening it
// by name then would follow whatever links were swapped in between. Instead the file is reached
// from a descriptor of its root, one component at a time with O_NOFOLLOW (the walk openat2's
// RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS would do, portable to kernels without openat2): the path
// was resolved to a link-free form inside the root by the guard, so any link met now is a swap
// and is refused, and ".." is refused outright, so nothing outside the root can be reached.
Result<std::vector<std::uint8_t>> read_file_bytes_beneath(const std::filesystem::path& root,
                                                          const std::filesystem::path& relative,
                                                          const ReadOptions& options) {
  const std::filesystem::path display = root / relative;
  if (relative.empty() || relative.is_absolute()) {
    return invalid_argument(display.string() + ": not a path below its root");
  }
  std::vector<std::string> parts;
  for (const auto& part : relative) {
    const std::string name = part.string();
    if (name.empty() || name == ".") continue;
    if (name == "..") return invalid_argument(display.string() + ": \"..\" is not allowed");
    parts.push_back(name);
  }
  if (parts.empty()) return invalid_argument(display.string() + ": not a file below its root");
  int dir = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return open_error(root, errno, true);
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    // Not O_PATH: with it, O_NOFOLLOW opens the link itself instead of failing with ELOOP.
    const int next =
        ::openat(dir, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    const int err = errno;
    if (next < 0) {
      // A link where a directory was: Linux says ENOTDIR (O_DIRECTORY) rather than ELOOP.
      struct stat st {};
      const bool link = ::fstatat(dir, parts[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                        S_ISLNK(st.st_mode);
      ::close(dir);
      return open_error(display, link ? ELOOP : err, false);
    }
    ::close(dir);
    dir = next;
  }
  const int fd = ::openat(dir, parts.back().c_str(), kReadFlags | O_NOFOLLOW);
  const int err = errno;  // ELOOP for a link: O_NOFOLLOW without O_DIRECTORY
  ::close(dir);
  if (fd < 0) return open_error(display, err, false);
  return read_open_file(fd, display, options);
}

}  // namespace segmentor
