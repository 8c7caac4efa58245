// Worker: the orchestration of `segmentor serve` (CONTRACT §1–§6). It takes deliveries from the
// broker, turns each per-asset message into engine tasks, and once a message's tasks are done
// writes the database rows, publishes the events, records the job progress and acks — in that
// order, so an ack always means "durable". It also runs the watermark timer and the graceful
// shutdown. The broker, database, tracker and engine are built by the caller and injected.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/backoff.h"
#include "common/status.h"
#include "jobs/job_tracker.h"
#include "messaging/broker_client.h"
#include "messaging/events.h"
#include "observability/metrics.h"
#include "pipeline/engine.h"
#include "service/input_guard.h"
#include "service/settlement.h"
#include "storage/delivery_log.h"
#include "storage/mask_path_store.h"

namespace segmentor::service {

// Note [Message lifecycle]
// Three kinds of thread touch a message:
//   - the consume loop (run()) takes it from the broker, parses it and, for an asset message,
//     queues one engine task per image or frame;
//   - engine worker threads run the tasks (decode, memory gate, models, atomic mask writes);
//   - one finisher thread does everything that waits on the database or the broker: the §5
//     UPDATE, the masked event (publisher confirm), JobTracker::record_*, the completion events,
//     and the ack. Batch messages and the watermark poll run there too, so job state has a single
//     writer in this process and the consume loop never blocks on an outage.
// The order on the finisher is the contract's: files (engine) → row → masked event → progress
// → completion events → ack. A crash anywhere before the ack leaves the message in the broker,
// and every step is idempotent on redelivery (same files, same row value, the tracker counts by
// asset id; a repeated masked event is allowed, at-least-once).
//
// Failures (each message is settled once, in Worker::settle: Note [One settle point] in
// settlement.h): a message that cannot be parsed, or names an unsafe id or path, is dead-lettered
// with the reason; an asset that fails permanently (missing or corrupt file) is recorded as
// failed and then dead-lettered; a transient one (out of memory after the ladder, I/O, a database
// error that is not an outage) goes to the broker's retry schedule, and is dead-lettered (and
// recorded as failed) once its retries run out. A database outage (kUnavailable) is not a failure
// of the message: the finisher waits for the database with back-off, holding the message unacked,
// until it is back or the worker shuts down (then the message is left to the broker), so an
// outage loses nothing and fills no dead-letter queue. A failed publish is retried through the
// schedule; a failed ack or dead-letter leaves the message unacked, and the broker redelivers it
// once the connection is replaced.
//
// Shutdown: request_stop() → cancel the consumers → wait up to `shutdown_grace` for every message
// in flight to settle → then give up on the rest (tasks not started are dropped, running ones
// get `abandon_wait` to finish, their messages stay unacked) → return. The caller then closes the
// broker connection, which hands every unacked message back.
//
// Note [Hard shutdown deadline]
// A task stuck in the engine (a model that never returns, a read that blocks) must not keep the
// process alive after SIGTERM: an orchestrator would SIGKILL it anyway, later. So run() returns
// within shutdown_grace + 2 × abandon_wait whatever the engine does; when a task or the finisher
// was still busy, stopped_cleanly() is false and the caller must end the process without
// destroying the engine or the worker (their threads still reference both), after closing the
// broker connection. Unacked messages are safe to leave: the broker redelivers them.

struct WorkerOptions {
  std::chrono::milliseconds shutdown_grace{30000};  // SHUTDOWN_GRACE_SECONDS
  // After the grace period: how long running tasks, then the finisher, may take to stop.
  std::chrono::milliseconds abandon_wait{3000};
  // How often the watermark timer (JobTracker::poll) runs.
  std::chrono::milliseconds poll_interval{2000};
  // Waiting for the database during an outage: doubles from initial to max.
  std::chrono::milliseconds db_initial_backoff{250};
  std::chrono::milliseconds db_max_backoff{5000};
  // Tasks handed to the engine at once; the rest wait here, so a shutdown can drop them.
  int max_tasks_in_engine = 6;
  // A message the broker redelivered more often than this (a worker died or hung on it each
  // time) is dead-lettered unread: Note [Counting redeliveries] in storage/delivery_log.h.
  int max_redeliveries = 2;
};

// What the worker uses; none is owned, all must outlive the worker. `metrics` may be null.
struct WorkerServices {
  messaging::BrokerClient* broker = nullptr;
  MaskPathStore* mask_paths = nullptr;
  JobTracker* tracker = nullptr;
  Engine* engine = nullptr;
  Metrics* metrics = nullptr;
  DeliveryLog* deliveries = nullptr;  // may be null: redeliveries are then not counted
};

// Runs the consume loop on the thread that calls run(). request_stop(), database_healthy() and
// the counters may be called from any thread.
class Worker {
 public:
  static Result<std::unique_ptr<Worker>> create(const WorkerOptions& options,
                                                const WorkerServices& services, InputGuard guard);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the broker's consumers, publishes completions a previous run decided but did not
  // publish, then consumes until request_stop(), and shuts down gracefully. An error only when
  // the broker could not be started.
  Status run();
  // Asks run() to shut down. Thread-safe; not async-signal-safe (call it from a signal thread).
  void request_stop();

  // False while the last database operation found the database unreachable.
  bool database_healthy() const { return db_healthy_.load(); }
  // After run(): false when a task or the finisher was still busy at the deadline (Note [Hard
  // shutdown deadline]); the process must then exit without destroying the worker or the engine.
  bool stopped_cleanly() const { return stopped_cleanly_.load(); }
  // Messages taken from the broker and not settled yet.
  int in_flight() const { return in_flight_.load(); }

 private:
  struct Message;
  friend struct Message;
  using Work = std::function<void()>;

  Worker(const WorkerOptions& options, const WorkerServices& services, InputGuard guard);

  // --- worker.cpp: loop, threads, settling ---
  void dispatch(messaging::Delivery delivery);
  void start(std::shared_ptr<Message> message);
  // Note [Counting redeliveries]: counts a flagged delivery, then starts or dead-letters it.
  void start_redelivered(const std::shared_ptr<Message>& message);
  void post(Work work);
  void finisher_loop();
  void submit_task(EngineTask task, Engine::Done done);
  void pump_tasks();
  void shutdown();
  void post_poll();
  bool abandoning() const { return abandoning_.load(); }
  // Sleeps up to `delay`, returning early when the worker starts abandoning its messages.
  void pause_unless_abandoning(std::chrono::milliseconds delay);

  void ack(const Message& message);
  // Dead-letters; true when done (the message is settled either way as far as we are concerned:
  // a failure leaves it to the broker).
  bool dead_letter(const Message& message, const Status& why, std::string_view error_type);
  // Broker retry schedule (republishing `body` instead of the delivery's when given).
  void retry_later(const Message& message, const Status& why, std::string_view error_type,
                   const std::optional<std::string>& body);
  // Publishes one event with the message's correlation id.
  Status publish(const messaging::OutgoingEvent& event, std::string_view correlation_id);
  void count(const Message& message, std::string_view outcome);

  // Runs `op` until it returns anything but kUnavailable (see Note [Message lifecycle]), or the
  // worker is abandoning its messages (then the last kUnavailable is returned).
  template <typename Op>
  auto with_database(std::string_view what, Op&& op) -> decltype(op());
  void note_database(const Status& status, std::string_view what);

  // --- completions (worker.cpp) ---
  void publish_completions(const std::vector<CompletionDecision>& decisions,
                           std::string_view correlation_id);
  void poll_completions();

  // --- message_handlers.cpp ---
  // The start_* functions run on the consume loop and queue engine tasks; the rest run on the
  // finisher and return the Outcome that settle() carries out.
  void start_product_image(std::shared_ptr<Message> message);
  // The engine's reader for a resolved input path.
  std::function<Result<std::vector<std::uint8_t>>(const ReadOptions&)> reader_for(
      const std::filesystem::path& resolved) const;
  void start_video(std::shared_ptr<Message> message);
  Outcome handle_batch(const Message& message);
  Outcome finish_product_image(const Message& message);
  Outcome finish_video(const Message& message);
  // Records outcomes (after their events), publishes a completion they caused. kUnavailable
  // when the database could not be reached before shutdown (then the message must stay unacked).
  Status record(const Message& message, const JobKey& key, const std::vector<AssetRecord>& assets);
  // The job and asset ids a per-asset message names, for recording them as failed unread.
  static std::optional<std::pair<JobKey, std::vector<std::string>>> assets_named(
      const messaging::Delivery& delivery);

  // The one place a message is acked, retried, dead-lettered or left (Note [One settle point]).
  void settle(const Message& message, const Outcome& outcome);

  const WorkerOptions options_;
  const WorkerServices services_;
  const InputGuard guard_;

  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> abandoning_{false};
  std::atomic<bool> db_healthy_{true};
  std::atomic<bool> poll_pending_{false};
  std::atomic<bool> stopped_cleanly_{true};
  std::atomic<int> in_flight_{0};

  std::mutex state_mutex_;  // guards the finisher queue, pending tasks and their counts
  std::condition_variable state_changed_;
  std::deque<Work> finisher_queue_;
  bool finisher_stop_ = false;
  bool finisher_exited_ = false;
  std::deque<std::pair<EngineTask, Engine::Done>> pending_tasks_;
  int tasks_in_engine_ = 0;
  std::thread finisher_;

  std::mutex pause_mutex_;  // with pause_cv_: wakes database waits when abandoning starts
  std::condition_variable pause_cv_;
  std::mutex in_flight_mutex_;  // with in_flight_cv_: shutdown waits for in_flight_ == 0
  std::condition_variable in_flight_cv_;
};

template <typename Op>
auto Worker::with_database(std::string_view what, Op&& op) -> decltype(op()) {
  Backoff backoff(options_.db_initial_backoff, options_.db_max_backoff);
  while (true) {
    auto result = op();
    Status status;
    if constexpr (std::is_same_v<decltype(result), Status>) {
      status = result;
    } else {
      status = result.status();
    }
    note_database(status, what);
    if (status.code() != ErrorCode::kUnavailable || abandoning()) return result;
    pause_unless_abandoning(backoff.next());
  }
}

}  // namespace segmentor::service
