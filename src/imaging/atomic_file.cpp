#include "imaging/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <system_error>

namespace segmentor {
namespace {

constexpr int kMaxNameAttempts = 16;

std::string errno_text(const std::filesystem::path& path, std::string_view what, int err) {
  std::string message = path.string();
  message.append(": ").append(what).append(": ").append(std::strerror(err));
  return message;
}

// ".<name>.tmp-<pid>-<counter>-<clock>": hidden, unique within the process by the counter and
// across processes by the pid; the clock guards against pid reuse after a crash left a file.
std::filesystem::path temp_path_for(const std::filesystem::path& target) {
  static std::atomic<std::uint64_t> counter{0};
  const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  std::string name = ".";
  name.append(target.filename().string())
      .append(".tmp-")
      .append(std::to_string(::getpid()))
      .append("-")
      .append(std::to_string(counter.fetch_add(1, std::memory_order_relaxed)))
      .append("-")
      .append(std::to_string(static_cast<std::uint64_t>(now) & 0xffffff));
  return target.parent_path() / name;
}

Status write_all(int fd, std::span<const std::uint8_t> bytes, const std::filesystem::path& path) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return io_error(errno_text(path, "write failed", errno));
    }
    done += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

// Closes a directory descriptor on scope exit.
class DirFd {
 public:
  explicit DirFd(int fd) : fd_(fd) {}
  ~DirFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  DirFd(const DirFd&) = delete;
  DirFd& operator=(const DirFd&) = delete;
  int get() const { return fd_; }
  void reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

// Note [Writing beneath a root]
// ~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
// With a trusted root (the data root for masks), every directory below it is created and entered
// one at a time from the root's descriptor with O_NOFOLLOW, and the file is created and renamed
// relative to the final directory's descriptor: a directory below the root replaced by a symbolic
// link (to /etc, say) makes the write fail instead of landing there. The root itself may be a
// link: it comes from the configuration, not from anyone who can write below it.
Status open_directory(const std::filesystem::path& target, const std::filesystem::path& root,
                      DirFd& out) {
  const std::filesystem::path dir =
      target.parent_path().empty() ? std::filesystem::path(".") : target.parent_path();
  if (root.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
      return io_error(target.string() + ": cannot create directory " + dir.string() + ": " +
                      ec.message());
    }
    out.reset(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (out.get() < 0) return io_error(errno_text(dir, "cannot open directory", errno));
    return Status::Ok();
  }
  // Both made absolute first: `segmentor run --out out` passes a relative root and absolute
  // targets, and a relative path is never "below" an absolute one lexically.
  const std::filesystem::path relative =
      std::filesystem::absolute(dir).lexically_normal().lexically_relative(
          std::filesystem::absolute(root).lexically_normal());
  if (relative.empty() || *relative.begin() == "..") {
    return invalid_argument(target.string() + ": not below " + root.string());
  }
  std::error_code ec;
  std::filesystem::create_directories(root, ec);  // the root itself is trusted
  out.reset(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (out.get() < 0) return io_error(errno_text(root, "cannot open directory", errno));
  std::filesystem::path walked = root;
  for (const auto& part : relative) {
    if (part.empty() || part == ".") continue;
    walked /= part;
    if (::mkdirat(out.get(), part.c_str(), 0755) != 0 && errno != EEXIST) {
      return io_error(errno_text(walked, "cannot create directory", errno));
    }
    const int next =
        ::openat(out.get(), part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      const int err = errno;
      if (err == ELOOP || err == ENOTDIR) {
        return io_error(walked.string() + ": not a directory (a symbolic link is not followed)");
      }
      return io_error(errno_text(walked, "cannot open directory", err));
    }
    out.reset(next);
  }
  return Status::Ok();
}

// Writes, syncs and closes the already-open temp file; closes fd in every case.
Status fill_temp_file(int fd, std::span<const std::uint8_t> bytes,
                      const std::filesystem::path& temp) {
  Status status = write_all(fd, bytes, temp);
  // Explicit mode: O_CREAT's mode is filtered by the umask, which is often 077 in containers.
  if (status.ok() && ::fchmod(fd, kAtomicFileMode) != 0) {
    status = io_error(errno_text(temp, "chmod failed", errno));
  }
  if (status.ok() && ::fsync(fd) != 0) status = io_error(errno_text(temp, "fsync failed", errno));
  if (::close(fd) != 0 && status.ok()) status = io_error(errno_text(temp, "close failed", errno));
  return status;
}

}  // namespace

Status write_file_atomically(const std::filesystem::path& target,
                             std::span<const std::uint8_t> bytes,
                             const std::filesystem::path& beneath) {
  if (target.filename().empty()) return invalid_argument(target.string() + ": not a file path");
  DirFd dir(-1);
  SEGMENTOR_RETURN_IF_ERROR(open_directory(target, beneath, dir));
  const std::string name = target.filename().string();

  std::string temp;
  int fd = -1;
  for (int attempt = 0; attempt < kMaxNameAttempts && fd < 0; ++attempt) {
    temp = temp_path_for(target).filename().string();
    fd = ::openat(dir.get(), temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                  kAtomicFileMode);
    if (fd < 0 && errno != EEXIST) {
      return io_error(
          errno_text(target, "cannot create temp file in " + target.parent_path().string(), errno));
    }
  }
  if (fd < 0) {
    return io_error(target.string() + ": no unused temp file name in " +
                    target.parent_path().string());
  }

  const std::filesystem::path temp_path = target.parent_path() / temp;
  Status status = fill_temp_file(fd, bytes, temp_path);
  if (status.ok() && ::renameat(dir.get(), temp.c_str(), dir.get(), name.c_str()) != 0) {
    status = io_error(errno_text(target, "rename failed", errno));
  }
  if (!status.ok()) {
    ::unlinkat(dir.get(), temp.c_str(), 0);
    return status;
  }
  // Makes the rename itself durable: without it a crash can bring back the old file.
  if (::fsync(dir.get()) != 0) {
    return io_error(errno_text(target.parent_path(), "directory fsync failed", errno));
  }
  return Status::Ok();
}

}  // namespace segmentor
