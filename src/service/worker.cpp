#include "service/worker.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "messaging/wire_format.h"
#include "service/worker_message.h"

namespace segmentor::service {

namespace {

using SteadyClock = std::chrono::steady_clock;

}  // namespace

Result<std::unique_ptr<Worker>> Worker::create(const WorkerOptions& options,
                                               const WorkerServices& services, InputGuard guard) {
  if (services.broker == nullptr || services.mask_paths == nullptr || services.tracker == nullptr ||
      services.engine == nullptr) {
    return invalid_argument("Worker needs a broker, a mask path store, a tracker and an engine");
  }
  if (options.max_tasks_in_engine < 1) {
    return invalid_argument("max_tasks_in_engine must be at least 1");
  }
  return std::unique_ptr<Worker>(new Worker(options, services, std::move(guard)));
}

Worker::Worker(const WorkerOptions& options, const WorkerServices& services, InputGuard guard)
    : options_(options), services_(services), guard_(std::move(guard)) {}

Worker::~Worker() {
  {
    std::lock_guard lock(state_mutex_);
    finisher_stop_ = true;
  }
  state_changed_.notify_all();
  if (finisher_.joinable()) finisher_.join();
  // Messages still referenced here unlock in_flight_mutex_ as they go: release them while every
  // member is alive, not in member destruction order.
  std::deque<Work> queued;
  std::deque<std::pair<EngineTask, Engine::Done>> pending;
  {
    std::lock_guard lock(state_mutex_);
    queued.swap(finisher_queue_);
    pending.swap(pending_tasks_);
  }
}

void Worker::request_stop() {
  stop_requested_.store(true);
  pause_cv_.notify_all();
}

Status Worker::run() {
  SEGMENTOR_RETURN_IF_ERROR(services_.broker->start(messaging::consumed_topics()));
  finisher_ = std::thread([this] { finisher_loop(); });
  // Completions decided before a crash or restart but never published go out first.
  post([this] {
    auto pending = with_database("unpublished completions",
                                 [this] { return services_.tracker->unpublished_completions(); });
    if (pending.ok()) {
      publish_completions(*pending, "");
    } else {
      spdlog::error("cannot read unpublished completions: {}", pending.status().to_string());
    }
  });
  spdlog::info("serving: consuming {} topics", messaging::consumed_topics().size());

  auto next_poll = SteadyClock::now() + options_.poll_interval;
  while (!stop_requested_.load()) {
    auto delivery = services_.broker->next(std::chrono::milliseconds(200));
    if (!delivery.ok()) {
      if (stop_requested_.load()) break;
      spdlog::warn("broker: {}", delivery.status().to_string());
      pause_unless_abandoning(std::chrono::milliseconds(200));
    } else if (delivery->has_value()) {
      dispatch(std::move(**delivery));
    }
    if (SteadyClock::now() >= next_poll) {
      post_poll();
      next_poll = SteadyClock::now() + options_.poll_interval;
    }
  }
  shutdown();
  return Status::Ok();
}

void Worker::dispatch(messaging::Delivery delivery) {
  auto message = std::make_shared<Message>(this, std::move(delivery));
  if (message->delivery.redelivered && services_.deliveries != nullptr) {
    // Counted on the finisher: the consume loop never waits on the database.
    post([this, message] { start_redelivered(message); });
    return;
  }
  start(std::move(message));
}

// Note [Counting redeliveries] (storage/delivery_log.h).
void Worker::start_redelivered(const std::shared_ptr<Message>& message) {
  const messaging::Delivery& delivery = message->delivery;
  auto count = with_database("count a redelivery", [&] {
    return services_.deliveries->note_redelivery(delivery.queue, delivery.body);
  });
  if (!count.ok()) {
    if (count.status().code() == ErrorCode::kUnavailable) {
      settle(*message, Outcome::Failed(count.status(), kDatabaseError));  // shutting down
      return;
    }
    // Counting is a safety net; a failure of it must not stop the message.
    spdlog::error("counting a redelivery: {}", count.status().to_string());
  } else if (*count > options_.max_redeliveries) {
    Outcome outcome;
    outcome.status = Status(ErrorCode::kInvalidArgument,
                            "redelivered " + std::to_string(*count) +
                                " times without being settled: a worker died or hung on it");
    outcome.error_type = kRedeliveredTooOften;
    if (auto named = assets_named(delivery)) {
      outcome.key = named->first;
      for (const std::string& id : named->second) {
        outcome.failed.push_back({id, AssetOutcome::kFailed, ""});
      }
    }
    settle(*message, outcome);
    return;
  } else {
    spdlog::info("{} message redelivered ({} of at most {} times)", delivery.topic, *count,
                 options_.max_redeliveries);
  }
  start(message);
}

void Worker::start(std::shared_ptr<Message> message) {
  const std::string& topic = message->delivery.topic;
  if (topic == messaging::kProductImageReady) {
    start_product_image(std::move(message));
  } else if (topic == messaging::kVideoKeyframesReady) {
    start_video(std::move(message));
  } else if (topic == messaging::kProductImagesReadyBatch ||
             topic == messaging::kVideoKeyframesReadyBatch) {
    post([this, message] { settle(*message, handle_batch(*message)); });
  } else {
    post([this, message] {
      settle(*message, Outcome::Malformed(
                           invalid_argument("no handler for topic " + message->delivery.topic)));
    });
  }
}

void Worker::post(Work work) {
  {
    std::lock_guard lock(state_mutex_);
    finisher_queue_.push_back(std::move(work));
  }
  state_changed_.notify_all();
}

void Worker::finisher_loop() {
  struct ExitMark {
    Worker* worker;
    ~ExitMark() {
      {
        std::lock_guard lock(worker->state_mutex_);
        worker->finisher_exited_ = true;
      }
      worker->state_changed_.notify_all();
    }
  } mark{this};
  while (true) {
    Work work;
    {
      std::unique_lock lock(state_mutex_);
      state_changed_.wait(lock, [this] { return finisher_stop_ || !finisher_queue_.empty(); });
      if (finisher_queue_.empty()) return;
      if (finisher_stop_ && abandoning()) {
        // Left unacked: the broker redelivers once the connection closes. Destroyed outside
        // the lock (a Message's destructor takes other locks).
        std::deque<Work> dropped;
        dropped.swap(finisher_queue_);
        lock.unlock();
        return;
      }
      work = std::move(finisher_queue_.front());
      finisher_queue_.pop_front();
    }
    try {
      work();
    } catch (const std::exception& e) {
      // Note [Exceptions stop at the engine]: the same holds for the finisher. The message it
      // held stays unacked; its redelivery is counted (Note [Counting redeliveries]).
      spdlog::error("finisher: a work item threw: {}", e.what());
    } catch (...) {
      spdlog::error("finisher: a work item threw");
    }
  }
}

void Worker::submit_task(EngineTask task, Engine::Done done) {
  {
    std::lock_guard lock(state_mutex_);
    pending_tasks_.emplace_back(std::move(task), std::move(done));
  }
  pump_tasks();
}

void Worker::pump_tasks() {
  std::vector<std::pair<EngineTask, Engine::Done>> ready;
  int running = 0;
  {
    std::lock_guard lock(state_mutex_);
    while (tasks_in_engine_ < options_.max_tasks_in_engine && !pending_tasks_.empty() &&
           !abandoning()) {
      ready.push_back(std::move(pending_tasks_.front()));
      pending_tasks_.pop_front();
      ++tasks_in_engine_;
    }
    running = tasks_in_engine_;
  }
  if (services_.metrics != nullptr) services_.metrics->set_concurrent_tasks(running);
  for (auto& [task, done] : ready) {
    services_.engine->submit(
        std::move(task), [this, done = std::move(done)](const EngineTask& t, const TaskOutcome& o) {
          done(t, o);
          {
            std::lock_guard lock(state_mutex_);
            --tasks_in_engine_;
          }
          state_changed_.notify_all();
          pump_tasks();
        });
  }
}

void Worker::shutdown() {
  spdlog::info("shutting down: no new messages; {} in flight, grace {} ms", in_flight(),
               options_.shutdown_grace.count());
  if (Status st = services_.broker->stop_consuming(); !st.ok()) {
    spdlog::warn("cancelling the consumers: {}", st.to_string());
  }
  {
    std::unique_lock lock(in_flight_mutex_);
    const bool settled = in_flight_cv_.wait_for(lock, options_.shutdown_grace,
                                                [this] { return in_flight_.load() == 0; });
    if (!settled) {
      spdlog::warn("grace period over: {} messages left unacked for redelivery", in_flight());
    }
  }
  {
    // Under pause_mutex_: a waiter between its predicate check and its wait would otherwise
    // miss this notification and sleep out its whole back-off.
    std::lock_guard pause_lock(pause_mutex_);
    abandoning_.store(true);
  }
  pause_cv_.notify_all();
  std::deque<std::pair<EngineTask, Engine::Done>> dropped;
  {
    std::unique_lock lock(state_mutex_);
    dropped.swap(pending_tasks_);
    // Tasks already in the engine finish (their callbacks reference this worker), unless one is
    // stuck (Note [Hard shutdown deadline]).
    const bool drained = state_changed_.wait_for(lock, options_.abandon_wait,
                                                 [this] { return tasks_in_engine_ == 0; });
    if (!drained) {
      spdlog::error(
          "{} task(s) still running {} ms after the grace period; leaving them (their "
          "messages stay unacked)",
          tasks_in_engine_, options_.abandon_wait.count());
    }
    finisher_stop_ = true;
  }
  dropped.clear();
  state_changed_.notify_all();
  // The finisher ends its current work item promptly: database waits stop when abandoning.
  std::unique_lock lock(state_mutex_);
  const bool finished =
      state_changed_.wait_for(lock, options_.abandon_wait, [this] { return finisher_exited_; });
  const bool engine_idle = tasks_in_engine_ == 0;
  lock.unlock();
  if (finished) {
    if (finisher_.joinable()) finisher_.join();
  } else {
    spdlog::error("the finisher is still busy {} ms after the grace period",
                  options_.abandon_wait.count());
  }
  stopped_cleanly_ = finished && engine_idle;
  spdlog::info("worker stopped");
}

void Worker::pause_unless_abandoning(std::chrono::milliseconds delay) {
  std::unique_lock lock(pause_mutex_);
  pause_cv_.wait_for(lock, delay, [this] { return abandoning(); });
}

void Worker::note_database(const Status& status, std::string_view what) {
  if (status.code() == ErrorCode::kUnavailable) {
    if (db_healthy_.exchange(false)) {
      spdlog::error("database unreachable during {}: {}; holding messages until it is back", what,
                    status.to_string());
    }
  } else if (status.ok() && !db_healthy_.exchange(true)) {
    spdlog::info("database reachable again");
  }
}

void Worker::count(const Message& message, std::string_view outcome) {
  if (services_.metrics != nullptr)
    services_.metrics->count_message(message.delivery.topic, outcome);
}

void Worker::ack(const Message& message) {
  Status st = services_.broker->ack(message.delivery);
  if (st.ok()) {
    count(message, "acked");
  } else {
    // kUnavailable: a stale delivery or a lost connection; the broker redelivers it.
    spdlog::warn("ack of a {} message failed ({}); the broker will redeliver it",
                 message.delivery.topic, st.to_string());
  }
}

bool Worker::dead_letter(const Message& message, const Status& why, std::string_view error_type) {
  spdlog::warn("dead-lettering a {} message: {}", message.delivery.topic, why.message());
  Status st = services_.broker->dead_letter(message.delivery, why.message(), error_type);
  if (!st.ok()) {
    spdlog::warn("dead-letter failed ({}); the broker will redeliver it", st.to_string());
    return false;
  }
  count(message, "dead_lettered");
  return true;
}

void Worker::retry_later(const Message& message, const Status& why, std::string_view error_type,
                         const std::optional<std::string>& body) {
  messaging::Delivery copy;
  const messaging::Delivery* delivery = &message.delivery;
  if (body.has_value()) {
    copy = message.delivery;  // same tag: settling the copy settles the delivery
    copy.body = *body;
    delivery = &copy;
  }
  auto decision = services_.broker->retry_later(*delivery, why.message(), error_type);
  if (!decision.ok()) {
    spdlog::warn("scheduling a retry failed ({}); the broker will redeliver it",
                 decision.status().to_string());
    return;
  }
  if (*decision == messaging::RetryDecision::kDeadLettered) {
    // Only when the broker's policy and ours disagree; settle() decides exhaustion first.
    count(message, "dead_lettered");
    spdlog::warn("{} message dead-lettered after its retries: {}", message.delivery.topic,
                 why.message());
    return;
  }
  count(message, "retried");
  spdlog::info("{} message scheduled for retry: {}", message.delivery.topic, why.message());
}

// Note [One settle point] (settlement.h).
void Worker::settle(const Message& message, const Outcome& outcome) {
  const Settlement settlement =
      decide(outcome, message.delivery.retry_count, services_.broker->retry_policy(), abandoning());
  switch (settlement) {
    case Settlement::kAck:
      ack(message);
      return;
    case Settlement::kLeave:
      spdlog::info("{} message left unacked for redelivery: {}", message.delivery.topic,
                   outcome.status.message());
      return;
    case Settlement::kRetry:
      retry_later(message, outcome.status, outcome.error_type, outcome.retry_body);
      return;
    case Settlement::kDeadLetter:
      if (outcome.key.has_value() && !outcome.failed.empty()) {
        // Progress first, then the dead-letter: an acked message is always counted.
        Status recorded = record(message, *outcome.key, outcome.failed);
        if (!recorded.ok() && recorded.code() == ErrorCode::kUnavailable && abandoning()) {
          spdlog::info(
              "{} message left unacked: its failure could not be recorded before "
              "shutdown",
              message.delivery.topic);
          return;
        }
        if (!recorded.ok()) {
          spdlog::error("dead-lettering a {} message whose failure could not be recorded: {}",
                        message.delivery.topic, recorded.to_string());
        }
      }
      (void)dead_letter(message, outcome.status, outcome.error_type);
      return;
  }
}

Status Worker::publish(const messaging::OutgoingEvent& event, std::string_view correlation_id) {
  Status st = services_.broker->publish(event.topic, event.payload, correlation_id);
  if (!st.ok()) spdlog::warn("publishing {} failed: {}", event.topic, st.to_string());
  return st;
}

// --- completions ---------------------------------------------------------------------------

void Worker::publish_completions(const std::vector<CompletionDecision>& decisions,
                                 std::string_view correlation_id) {
  for (const CompletionDecision& decision : decisions) {
    const std::string& job_id = decision.key.job_id;
    if (decision.publish_completed_event) {
      messaging::SegmentationCompletion completion;
      completion.kind = decision.key.asset_kind;
      completion.job_id = job_id;
      completion.total_assets = decision.total_assets;
      completion.processed_assets = decision.processed_assets;
      completion.failed_assets = decision.failed_assets;
      completion.has_partial_completion = decision.has_partial_completion;
      completion.watermark_ttl = decision.watermark_ttl;
      // Not acknowledged on failure: JobTracker::poll offers it again later.
      if (!publish(messaging::build_segmentation_completed(completion), correlation_id).ok()) {
        continue;
      }
    }
    const messaging::OutgoingEvent batch =
        decision.key.asset_kind == AssetKind::kProductImage
            ? messaging::build_product_images_masked_batch(job_id, decision.masked_batch_total)
            : messaging::build_video_keyframes_masked_batch(job_id, decision.masked_batch_total);
    if (!publish(batch, correlation_id).ok()) continue;
    Status acked = with_database("acknowledge completion", [&] {
      return services_.tracker->acknowledge_completion(decision.key);
    });
    if (!acked.ok()) {
      spdlog::warn("completion of {} published but not acknowledged: {}", to_string(decision.key),
                   acked.to_string());
    }
    spdlog::info("job {} completed ({}): {} of {} done, {} failed", to_string(decision.key),
                 to_string(decision.reason), decision.processed_assets, decision.total_assets,
                 decision.failed_assets);
  }
}

void Worker::post_poll() {
  if (poll_pending_.exchange(true)) return;  // the last one has not run yet
  post([this] {
    poll_pending_.store(false);
    poll_completions();
  });
}

void Worker::poll_completions() {
  // One try: the timer comes back in a few seconds anyway, and an outage must not hold up the
  // messages queued behind it on the finisher.
  auto due = services_.tracker->poll();
  note_database(due.status(), "the watermark poll");
  if (!due.ok()) {
    if (due.status().code() != ErrorCode::kUnavailable) {
      spdlog::error("watermark poll: {}", due.status().to_string());
    }
    return;
  }
  publish_completions(*due, "");
}

}  // namespace segmentor::service
