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

}  // namespace

Result<std::vector<std::uint8_t>> read_file_bytes(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return not_found(path.string() + ": no such file");
    return io_error(errno_message(path, "cannot open", err));
  }
  FdCloser closer(fd);

  struct stat st {};
  if (::fstat(fd, &st) != 0) return io_error(errno_message(path, "cannot stat", errno));
  if (!S_ISREG(st.st_mode)) return io_error(path.string() + ": not a regular file");

  std::vector<std::uint8_t> bytes;
  try {
    bytes.resize(static_cast<std::size_t>(st.st_size));
  } catch (const std::bad_alloc&) {
    return out_of_memory(path.string() + ": cannot allocate " + std::to_string(st.st_size) +
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

}  // namespace segmentor
