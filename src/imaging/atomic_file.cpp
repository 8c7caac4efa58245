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

Status fsync_directory(const std::filesystem::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return io_error(errno_text(dir, "cannot open directory to fsync", errno));
  Status status;
  if (::fsync(fd) != 0) status = io_error(errno_text(dir, "directory fsync failed", errno));
  ::close(fd);
  return status;
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
                             std::span<const std::uint8_t> bytes) {
  if (target.filename().empty()) return invalid_argument(target.string() + ": not a file path");
  const std::filesystem::path dir =
      target.parent_path().empty() ? std::filesystem::path(".") : target.parent_path();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return io_error(target.string() + ": cannot create directory " + dir.string() + ": " +
                    ec.message());

  std::filesystem::path temp;
  int fd = -1;
  for (int attempt = 0; attempt < kMaxNameAttempts && fd < 0; ++attempt) {
    temp = temp_path_for(dir / target.filename());
    fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kAtomicFileMode);
    if (fd < 0 && errno != EEXIST) {
      return io_error(errno_text(target, "cannot create temp file in " + dir.string(), errno));
    }
  }
  if (fd < 0) return io_error(target.string() + ": no unused temp file name in " + dir.string());

  Status status = fill_temp_file(fd, bytes, temp);
  if (status.ok() && ::rename(temp.c_str(), target.c_str()) != 0) {
    status = io_error(errno_text(target, "rename failed", errno));
  }
  if (!status.ok()) {
    ::unlink(temp.c_str());
    return status;
  }
  // Makes the rename itself durable: without it a crash can bring back the old file.
  return fsync_directory(dir);
}

}  // namespace segmentor
