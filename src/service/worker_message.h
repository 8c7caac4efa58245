// The per-delivery state the worker's threads share (see Note [Message lifecycle] in
// service/worker.h). Private to the service library.
#pragma once

#include <atomic>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "messaging/broker_client.h"
#include "messaging/events.h"
#include "pipeline/engine.h"
#include "service/worker.h"

namespace segmentor::service {

// One delivery in flight. Held by shared_ptr by whatever works on it (pending tasks, engine
// callbacks, finisher work); when the last holder lets go the message stops counting as in
// flight — settled, or left unacked for the broker to redeliver. Fields are written by the
// consume loop before any task starts, then `outcomes[i]` by task i only; `remaining` orders
// those writes before the finisher reads them.
struct Worker::Message {
  Message(Worker* owner, messaging::Delivery d) : worker(owner), delivery(std::move(d)) {
    worker->in_flight_.fetch_add(1);
  }
  ~Message() {
    {
      std::lock_guard lock(worker->in_flight_mutex_);
      worker->in_flight_.fetch_sub(1);
    }
    worker->in_flight_cv_.notify_all();
  }
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;

  Worker* const worker;
  const messaging::Delivery delivery;
  std::string correlation_id;
  std::optional<messaging::ProductImageReady> image;
  std::optional<messaging::VideoKeyframesReady> video;
  std::vector<TaskOutcome> outcomes;  // one per image or frame, input order
  std::atomic<int> remaining{0};      // tasks not finished yet
};

}  // namespace segmentor::service
