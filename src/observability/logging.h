// Process-wide logging set-up (spdlog): JSON lines for the service, plain text for people.
#pragma once

#include <string_view>

#include "common/status.h"

namespace segmentor {

enum class LogFormat { kJson, kText };

// Installs the default logger on stderr at `level` (DEBUG, INFO, WARNING/WARN, ERROR, CRITICAL).
Status setup_logging(std::string_view level, LogFormat format);

}  // namespace segmentor
