// The worker's HTTP endpoint: /metrics (Prometheus text), /healthz (process up), /readyz (models
// loaded, broker and database connected). Served by civetweb's own threads.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "common/status.h"

struct mg_context;
struct mg_connection;

namespace segmentor {

// Owns the civetweb server; stops it on destruction. The callbacks run on civetweb threads and
// must be thread-safe; they must outlive this object.
class HttpEndpoint {
 public:
  struct Options {
    std::string bind_address = "0.0.0.0";
    int port = 8080;
    int threads = 2;
  };
  // Returns the Prometheus text exposition of every metric.
  using MetricsText = std::function<std::string()>;
  // Returns {ready, one line saying why or why not}.
  using Readiness = std::function<std::pair<bool, std::string>()>;

  static Result<std::unique_ptr<HttpEndpoint>> create(const Options& options, MetricsText metrics,
                                                      Readiness readiness);
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  int port() const { return port_; }

 private:
  HttpEndpoint(MetricsText metrics, Readiness readiness)
      : metrics_(std::move(metrics)), readiness_(std::move(readiness)) {}
  static int handle(::mg_connection* conn, void* self);

  MetricsText metrics_;
  Readiness readiness_;
  mg_context* context_ = nullptr;
  int port_ = 0;
};

}  // namespace segmentor
