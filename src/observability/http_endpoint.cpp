#include "observability/http_endpoint.h"

#include <civetweb.h>

#include <cstring>
#include <string>
#include <string_view>

namespace segmentor {

namespace {

void send_response(mg_connection* conn, int code, std::string_view reason,
                   std::string_view content_type, std::string_view body) {
  mg_printf(conn,
            "HTTP/1.1 %d %.*s\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
            code, static_cast<int>(reason.size()), reason.data(),
            static_cast<int>(content_type.size()), content_type.data(), body.size());
  mg_write(conn, body.data(), body.size());
}

}  // namespace

int HttpEndpoint::handle(mg_connection* conn, void* self_ptr) {
  auto* self = static_cast<HttpEndpoint*>(self_ptr);
  const mg_request_info* info = mg_get_request_info(conn);
  const std::string_view uri = info->local_uri != nullptr ? info->local_uri : "";
  if (std::strcmp(info->request_method, "GET") != 0 &&
      std::strcmp(info->request_method, "HEAD") != 0) {
    send_response(conn, 405, "Method Not Allowed", "text/plain", "GET only\n");
    return 405;
  }
  if (uri == "/metrics") {
    send_response(conn, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", self->metrics_());
    return 200;
  }
  if (uri == "/healthz") {
    send_response(conn, 200, "OK", "text/plain", "ok\n");
    return 200;
  }
  if (uri == "/readyz") {
    const auto [ready, why] = self->readiness_();
    if (ready) {
      send_response(conn, 200, "OK", "text/plain", "ready: " + why + "\n");
      return 200;
    }
    send_response(conn, 503, "Service Unavailable", "text/plain", "not ready: " + why + "\n");
    return 503;
  }
  send_response(conn, 404, "Not Found", "text/plain", "try /metrics, /healthz or /readyz\n");
  return 404;
}

Result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::create(const Options& options,
                                                           MetricsText metrics,
                                                           Readiness readiness) {
  mg_init_library(0);
  std::unique_ptr<HttpEndpoint> endpoint(
      new HttpEndpoint(std::move(metrics), std::move(readiness)));
  const std::string ports = options.bind_address + ":" + std::to_string(options.port);
  const std::string threads = std::to_string(options.threads);
  const char* config[] = {"listening_ports", ports.c_str(), "num_threads", threads.c_str(),
                          nullptr};
  mg_callbacks callbacks{};
  endpoint->context_ = mg_start(&callbacks, nullptr, config);
  if (endpoint->context_ == nullptr) {
    return unavailable("cannot listen on " + ports + " for /metrics (METRICS_PORT in use?)");
  }
  mg_set_request_handler(endpoint->context_, "/", &HttpEndpoint::handle, endpoint.get());
  mg_server_port bound[4]{};
  if (mg_get_server_ports(endpoint->context_, 4, bound) > 0) endpoint->port_ = bound[0].port;
  return endpoint;
}

HttpEndpoint::~HttpEndpoint() {
  if (context_ != nullptr) mg_stop(context_);
}

}  // namespace segmentor
