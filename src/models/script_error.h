// The readable part of an error raised inside the TorchScript interpreter. Torch-free and
// header-only, like oom_classify.h.
#pragma once

#include <string>
#include <string_view>

namespace segmentor {

// Note [TorchScript errors lead with the error]
// An exception raised while a scripted model runs (a `raise` in its code, a shape mismatch in one
// of its ops) reaches us as "The following operation failed in the TorchScript interpreter.",
// one or two tracebacks of indented source lines, and only then the error itself
// ("builtins.RuntimeError: ..."). The message becomes a failed asset's reason, and the
// dead-letter header keeps its first 500 characters (wire_format.h): what was kept was the
// traceback's start, never the error. So the error is moved to the front and the traceback
// follows it, for the logs. A message without a traceback is returned unchanged.
inline std::string lead_with_script_error(std::string_view message) {
  constexpr std::string_view kTraceback = "Traceback of TorchScript";
  const std::size_t last = message.rfind(kTraceback);
  if (last == std::string_view::npos) return std::string(message);
  // The traceback's lines are indented or blank; the error starts at the first line that is not.
  for (std::size_t end = message.find('\n', last); end != std::string_view::npos;
       end = message.find('\n', end + 1)) {
    const std::size_t start = end + 1;
    if (start >= message.size()) break;
    const char first = message[start];
    if (first == ' ' || first == '\t' || first == '\n' || first == '\r') continue;
    std::string_view error = message.substr(start);
    while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.remove_suffix(1);
    std::string_view trace = message.substr(0, end);
    return std::string(error) + " [" + std::string(trace) + "]";
  }
  return std::string(message);
}

}  // namespace segmentor
