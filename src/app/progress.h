// Progress for `segmentor run`: a redrawn bar with rate and ETA on a terminal, plain lines
// otherwise (CI logs, pipes).
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>

namespace segmentor {

// Not thread-safe: call from the thread that collects results.
class ProgressReporter {
 public:
  // `out` is usually stderr; `interactive` chooses the bar (true) or one line per item (false).
  ProgressReporter(std::FILE* out, bool interactive, std::size_t total);

  // One item finished. `ok` false prints the failure at once in either mode.
  void item_done(std::string_view name, bool ok, std::string_view detail);
  // Clears the bar so the summary starts on a clean line.
  void finish();

  // "1:02:03" or "2:03".
  static std::string format_duration(double seconds);

 private:
  void draw_bar(std::string_view name);

  std::FILE* out_;
  bool interactive_;
  std::size_t total_;
  std::size_t done_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace segmentor
