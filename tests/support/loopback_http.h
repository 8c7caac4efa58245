// Loopback networking helpers for tests that talk to the worker's HTTP endpoint.
#pragma once

#include <string>

namespace segmentor::fixtures {

// A free TCP port on 127.0.0.1 at the time of the call (the kernel's pick).
int free_loopback_port();

// A plain HTTP/1.0 GET to 127.0.0.1:port; the whole response (status line, headers, body), or ""
// when nothing listens there.
std::string http_get(int port, const std::string& path);

}  // namespace segmentor::fixtures
