// `segmentor serve`: the pipeline worker (docs/serve.md). This file parses the flags, builds the
// runtime, the database and broker clients, the HTTP endpoint and the worker, and turns SIGTERM /
// SIGINT into a graceful stop. The orchestration itself lives in src/service/.
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "app/subcommand.h"
#include "jobs/clock.h"
#include "jobs/job_tracker.h"
#include "messaging/broker_client.h"
#include "observability/http_endpoint.h"
#include "observability/metrics.h"
#include "pipeline/engine.h"
#include "runtime/runtime.h"
#include "service/input_guard.h"
#include "service/worker.h"
#include "storage/database_clock.h"
#include "storage/delivery_log.h"
#include "storage/mask_path_store.h"
#include "storage/pg_job_store.h"
#include "storage/postgres.h"

namespace segmentor {

namespace {

struct ServeFlags {
  std::string device;
  int republish_after_seconds = 60;
  int poll_interval_ms = 2000;
  int database_start_timeout_seconds = 60;
};

// What /readyz and /metrics look at; filled in as start-up proceeds.
struct ServeState {
  std::atomic<Runtime*> runtime{nullptr};
  std::atomic<messaging::BrokerClient*> broker{nullptr};
  std::atomic<service::Worker*> worker{nullptr};
  std::atomic<bool> stop{false};
};

// Note [Signals]
// SIGTERM and SIGINT are blocked in every thread (the mask is set before any thread starts and is
// inherited), and one thread takes them with sigtimedwait, so the stop runs as ordinary code
// instead of inside a signal handler.
class SignalWatcher {
 public:
  explicit SignalWatcher(ServeState& state) : state_(state) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] { watch(); });
  }
  ~SignalWatcher() {
    done_.store(true);
    thread_.join();
  }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  void watch() {
    while (!done_.load()) {
      timespec timeout{0, 200'000'000};
      const int signal = sigtimedwait(&set_, nullptr, &timeout);
      if (signal <= 0) continue;
      if (state_.stop.exchange(true)) {
        spdlog::warn("signal {} again: already stopping", signal);
        continue;
      }
      spdlog::info("signal {}: stopping gracefully", signal);
      if (service::Worker* worker = state_.worker.load()) worker->request_stop();
    }
  }

  ServeState& state_;
  sigset_t set_{};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

Result<std::unique_ptr<PostgresDatabase>> connect_database(const Config& config,
                                                           const ServeFlags& flags,
                                                           const ServeState& state) {
  PostgresOptions options;
  options.dsn = config.effective_postgres_dsn();
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(flags.database_start_timeout_seconds);
  while (true) {
    auto db = PostgresDatabase::create(options);
    if (db.ok() || db.status().code() != ErrorCode::kUnavailable || state.stop.load() ||
        std::chrono::steady_clock::now() >= deadline) {
      return db;
    }
    spdlog::warn("database not reachable yet ({}); retrying", db.status().message());
  }
}

std::vector<LaneReading> lane_readings(const Runtime& runtime) {
  std::vector<LaneReading> readings;
  for (const auto& lane : runtime.lanes) {
    readings.push_back({lane->name(), lane->device->snapshot(), lane->gate->stats(),
                        lane->recovery->stats(), lane->cache->stats()});
  }
  return readings;
}

std::pair<bool, std::string> readiness(const ServeState& state) {
  if (state.runtime.load() == nullptr) return {false, "models not loaded yet"};
  const messaging::BrokerClient* broker = state.broker.load();
  if (broker == nullptr || !broker->connected()) return {false, "broker not connected"};
  const service::Worker* worker = state.worker.load();
  if (worker == nullptr) return {false, "worker not started"};
  if (!worker->database_healthy()) return {false, "database unreachable"};
  if (state.stop.load()) return {false, "shutting down"};
  return {true, "ready"};
}

int serve(Config& config, const ServeFlags& flags) {
  ServeState state;
  SignalWatcher signals(state);  // before any other thread starts (Note [Signals])
  Metrics metrics;

  std::unique_ptr<Runtime> runtime_holder;  // outlives the endpoint that reads it
  std::unique_ptr<HttpEndpoint> http;
  if (config.metrics_port > 0) {
    HttpEndpoint::Options http_options;
    http_options.port = config.metrics_port;
    auto started = HttpEndpoint::create(
        http_options,
        [&metrics, &state] {
          if (Runtime* rt = state.runtime.load()) {
            metrics.update_memory(lane_readings(*rt));
          }
          metrics.set_ready(readiness(state).first);
          return metrics.serialize();
        },
        [&state] { return readiness(state); });
    if (!started.ok()) {
      spdlog::critical("HTTP endpoint: {}", started.status().to_string());
      return kExitUsage;
    }
    http = std::move(started).value();
    spdlog::info("HTTP endpoint on port {}: /metrics /healthz /readyz", http->port());
  }

  auto guard = service::InputGuard::create(config.effective_input_roots());
  if (!guard.ok()) {
    spdlog::critical("input roots: {}", guard.status().to_string());
    return kExitUsage;
  }
  RuntimeOptions runtime_options;
  runtime_options.device = flags.device;
  auto runtime = build_runtime(config, runtime_options);
  if (!runtime.ok()) {
    spdlog::critical("cannot load the models: {}", runtime.status().to_string());
    return kExitUsage;
  }
  runtime_holder = std::move(runtime).value();
  Runtime& rt = *runtime_holder;
  spdlog::info("runtime: {}", rt.describe());
  // Loading models cannot be interrupted; a SIGTERM that arrived meanwhile (a pod deleted while
  // starting) is a clean stop: nothing was consumed yet, so do not go on to the database.
  if (state.stop.load()) {
    spdlog::info("stopped during start-up");
    return kExitOk;
  }

  auto db = connect_database(config, flags, state);
  if (!db.ok() && state.stop.load()) {
    spdlog::info("stopped during start-up, before the database was reached");
    return kExitOk;
  }
  if (!db.ok()) {
    spdlog::critical("database {}: {}", mask_url_password(config.effective_postgres_dsn()),
                     db.status().to_string());
    return kExitUsage;
  }
  auto job_store = PgJobStore::create(db->get());
  if (!job_store.ok()) {
    spdlog::critical("worker tables: {}", job_store.status().to_string());
    return kExitUsage;
  }
  auto deliveries = DeliveryLog::create(db->get());
  if (!deliveries.ok()) {
    spdlog::critical("worker tables: {}", deliveries.status().to_string());
    return kExitUsage;
  }
  MaskPathStore mask_paths(db->get());
  // Note [Completion claims] (jobs/job_tracker.h): replicas share the database's clock.
  DatabaseClock clock(db->get());
  JobTrackerOptions tracker_options;
  tracker_options.completion_threshold_percentage = config.completion_threshold_percentage;
  tracker_options.batch_timeout = std::chrono::seconds(config.batch_timeout_seconds);
  tracker_options.republish_after = std::chrono::seconds(flags.republish_after_seconds);
  auto tracker = JobTracker::create(tracker_options, job_store->get(), &clock);
  if (!tracker.ok()) {
    spdlog::critical("job tracker: {}", tracker.status().to_string());
    return kExitUsage;
  }

  messaging::BrokerOptions broker_options;
  broker_options.url = config.bus_broker;
  broker_options.max_concurrent_batches = config.max_concurrent_batches;
  auto broker = messaging::BrokerClient::create(broker_options);
  if (!broker.ok()) {
    spdlog::critical("broker: {}", broker.status().to_string());
    return kExitUsage;
  }
  state.broker.store(broker->get());

  EngineOptions engine_options;
  engine_options.layout = MaskLayout{config.data_root, config.foreground_mask_rel_path,
                                     config.people_mask_rel_path, config.product_mask_rel_path};
  engine_options.decode = DecodeOptions{config.max_image_pixels, {}};
  // InputGuard resolved every link already: a link found at open time was swapped in since.
  engine_options.decode.read.follow_symlinks = false;
  engine_options.max_concurrent = config.max_concurrent_images;
  // The worker is declared before the engine so that it is destroyed last —
  // the engine's destructor finishes running tasks, whose callbacks reach into the worker.
  std::unique_ptr<service::Worker> worker;
  auto engine = std::make_unique<Engine>(engine_options, rt.lane_views(), rt.cpu_lane.get());

  service::WorkerOptions worker_options;
  worker_options.shutdown_grace = std::chrono::seconds(config.shutdown_grace_seconds);
  worker_options.poll_interval = std::chrono::milliseconds(flags.poll_interval_ms);
  worker_options.max_tasks_in_engine =
      static_cast<int>(rt.lanes.size()) * config.max_concurrent_images + 2;
  service::WorkerServices services{broker->get(), &mask_paths, tracker->get(),
                                   engine.get(),  &metrics,    deliveries->get()};
  auto created = service::Worker::create(worker_options, services, std::move(guard).value());
  if (!created.ok()) {
    spdlog::critical("worker: {}", created.status().to_string());
    return kExitUsage;
  }
  worker = std::move(created).value();
  state.worker.store(worker.get());
  for (const auto& lane : rt.lanes) metrics.set_calibration(lane->name(), lane->calibration);
  state.runtime.store(&rt);
  if (state.stop.load()) worker->request_stop();  // a signal during start-up

  Status ran = worker->run();
  state.worker.store(nullptr);
  // Closing the connection hands every unacked message back to the broker.
  (*broker)->stop();
  state.broker.store(nullptr);
  state.runtime.store(nullptr);
  if (!ran.ok()) {
    spdlog::critical("broker {}: {}", mask_url_password(config.bus_broker), ran.to_string());
    return kExitUsage;
  }
  if (!worker->stopped_cleanly()) {
    // Note [Hard shutdown deadline] (service/worker.h): threads still reference the engine and
    // the worker, so neither may be destroyed; the broker already has its messages back.
    spdlog::warn("exiting with work still running");
    spdlog::shutdown();
    std::_Exit(kExitOk);
  }
  return kExitOk;
}

}  // namespace

Subcommand add_serve_command(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cli = app.add_subcommand(
      "serve",
      "Run the pipeline worker: consume the upstream RabbitMQ events, write masks, update "
      "PostgreSQL and publish the masked events (docs/serve.md)");
  cli->add_option("--device", flags->device, "auto, cpu, cuda or cuda:N (default: DEVICE)");
  cli->add_option("--republish-after-seconds", flags->republish_after_seconds,
                  "Publish a decided but unpublished job completion again after this long")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cli->add_option("--poll-interval-ms", flags->poll_interval_ms,
                  "How often the job watermark timer runs")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cli->add_option("--database-start-timeout", flags->database_start_timeout_seconds,
                  "Seconds to keep trying to reach PostgreSQL at start-up")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  return {cli, [flags](Config& config) { return serve(config, *flags); }};
}

}  // namespace segmentor
