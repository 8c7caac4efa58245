#include "app/progress.h"

#include <algorithm>
#include <string>

namespace segmentor {

ProgressReporter::ProgressReporter(std::FILE* out, bool interactive, std::size_t total)
    : out_(out),
      interactive_(interactive),
      total_(total),
      start_(std::chrono::steady_clock::now()) {}

std::string ProgressReporter::format_duration(double seconds) {
  const long total = std::max(0L, static_cast<long>(seconds + 0.5));
  const long h = total / 3600;
  const long m = (total / 60) % 60;
  const long s = total % 60;
  char buf[32];
  if (h > 0) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", h, m, s);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", m, s);
  }
  return buf;
}

void ProgressReporter::item_done(std::string_view name, bool ok, std::string_view detail) {
  ++done_;
  if (interactive_) {
    if (!ok) {
      std::fprintf(out_, "\r\033[K  failed: %.*s: %.*s\n", static_cast<int>(name.size()),
                   name.data(), static_cast<int>(detail.size()), detail.data());
    }
    draw_bar(name);
    return;
  }
  std::fprintf(out_, "[%zu/%zu] %s %.*s%s%.*s\n", done_, total_, ok ? "ok    " : "FAILED",
               static_cast<int>(name.size()), name.data(), detail.empty() ? "" : ": ",
               static_cast<int>(detail.size()), detail.data());
  std::fflush(out_);
}

void ProgressReporter::draw_bar(std::string_view name) {
  constexpr int kWidth = 30;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double rate = elapsed > 0 ? static_cast<double>(done_) / elapsed : 0.0;
  const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : 0.0;
  const int filled = total_ == 0 ? kWidth : static_cast<int>(kWidth * done_ / total_);
  std::string bar(static_cast<std::size_t>(filled), '=');
  if (filled < kWidth) bar += '>';
  bar.resize(kWidth, ' ');
  const std::string shown(name.substr(0, 40));
  std::fprintf(out_, "\r\033[K[%s] %zu/%zu  %.2f img/s  ETA %s  %s", bar.c_str(), done_, total_,
               rate, format_duration(eta).c_str(), shown.c_str());
  std::fflush(out_);
}

void ProgressReporter::finish() {
  if (interactive_) {
    std::fprintf(out_, "\r\033[K");
    std::fflush(out_);
  }
}

}  // namespace segmentor
