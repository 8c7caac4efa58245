#include "memory/admission_gate.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace segmentor {

// --- Ticket ---

AdmissionGate::Ticket::Ticket(Ticket&& other) noexcept
    : gate_(std::exchange(other.gate_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      slot_(std::exchange(other.slot_, 0)),
      level_(std::exchange(other.level_, 0)) {}

AdmissionGate::Ticket& AdmissionGate::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    release();
    gate_ = std::exchange(other.gate_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    slot_ = std::exchange(other.slot_, 0);
    level_ = std::exchange(other.level_, 0);
  }
  return *this;
}

AdmissionGate::Ticket::~Ticket() { release(); }

void AdmissionGate::Ticket::release() {
  if (gate_ == nullptr) return;
  std::exchange(gate_, nullptr)->release_ticket(bytes_, slot_);
  bytes_ = 0;
  slot_ = 0;
  level_ = 0;
}

// --- construction ---

Result<std::unique_ptr<AdmissionGate>> AdmissionGate::create(AdmissionGateOptions options,
                                                             DeviceMemory* device) {
  if (device == nullptr) return invalid_argument("admission gate: no device");
  if (!(options.memory_threshold > 0.0 && options.memory_threshold <= 1.0)) {
    return invalid_argument("admission gate: memory threshold must be in (0, 1], got " +
                            std::to_string(options.memory_threshold));
  }
  if (options.min_concurrent < 0 || options.max_concurrent < 1 ||
      options.min_concurrent > options.max_concurrent) {
    return invalid_argument("admission gate: need 0 <= MIN <= MAX and MAX >= 1, got MIN " +
                            std::to_string(options.min_concurrent) + ", MAX " +
                            std::to_string(options.max_concurrent));
  }
  if (!(options.backoff_factor > 0.0 && options.backoff_factor < 1.0)) {
    return invalid_argument("admission gate: backoff factor must be in (0, 1)");
  }
  if (options.successes_per_increase < 1 || options.increase_step_bytes < 0 ||
      options.budget_refresh_interval.count() < 0) {
    return invalid_argument("admission gate: negative interval, step or success count");
  }
  std::unique_ptr<AdmissionGate> gate(new AdmissionGate(std::move(options), device));
  gate->refresh_budget();
  return gate;
}

AdmissionGate::AdmissionGate(AdmissionGateOptions options, DeviceMemory* device)
    : options_(std::move(options)),
      effective_min_(std::max(1, options_.min_concurrent)),
      device_(device),
      concurrency_cap_(options_.max_concurrent) {
  // Slot 0 on top of the stack, so a lone task always runs on slot 0.
  for (int slot = options_.max_concurrent - 1; slot >= 0; --slot) free_slots_.push_back(slot);
}

std::chrono::steady_clock::time_point AdmissionGate::now() const {
  return options_.now ? options_.now() : std::chrono::steady_clock::now();
}

// --- the budget ---

void AdmissionGate::refresh_budget_if_due() {
  {
    std::lock_guard lock(state_mutex_);
    if (read_in_progress_) return;  // someone is reading right now; their figure will do
    if (last_read_ && now() - *last_read_ < options_.budget_refresh_interval) return;
    read_in_progress_ = true;
  }
  // Outside the lock: a device read must not hold up releases and other decisions. If it throws,
  // the read is over all the same: left marked in progress, no reader would ever refresh the
  // budget again (the gate would decide on a stale figure forever).
  MemorySnapshot snapshot;
  try {
    snapshot = device_->snapshot();
  } catch (...) {
    std::lock_guard lock(state_mutex_);
    read_in_progress_ = false;
    throw;
  }
  std::lock_guard lock(state_mutex_);
  read_in_progress_ = false;
  apply_snapshot(snapshot);
}

void AdmissionGate::refresh_budget() {
  const MemorySnapshot snapshot = device_->snapshot();
  std::lock_guard lock(state_mutex_);
  apply_snapshot(snapshot);
}

void AdmissionGate::apply_snapshot(const MemorySnapshot& snapshot) {
  last_read_ = now();
  ++counters_.budget_reads_total;
  budget_ = snapshot.budget_bytes();
  threshold_budget_ = static_cast<std::int64_t>(
      std::floor(static_cast<double>(budget_) * options_.memory_threshold));
  changed_locked();
}

// --- the arithmetic (Note [Gate arithmetic]) ---

std::int64_t AdmissionGate::task_room_locked() const {
  return std::max<std::int64_t>(0, threshold_budget_ - resident_);
}

std::int64_t AdmissionGate::limit_locked() const {
  std::int64_t room = task_room_locked();
  if (aimd_cap_) room = std::min(room, *aimd_cap_);
  return resident_ + room;
}

bool AdmissionGate::fits_locked(std::int64_t bytes) const {
  if (in_flight_ >= concurrency_cap_) return false;
  if (in_flight_ < effective_min_ || options_.count_only) return true;
  return resident_ + in_flight_bytes_ + bytes <= limit_locked();
}

AdmissionGate::Ticket AdmissionGate::admit_locked(std::int64_t bytes) {
  ++in_flight_;
  in_flight_bytes_ += bytes;
  largest_task_bytes_ = std::max(largest_task_bytes_, bytes);
  ++counters_.admitted_total;
  counters_.peak_in_flight = std::max(counters_.peak_in_flight, in_flight_);
  // fits_locked() never admits past MAX, so a slot is always free here.
  const int slot = free_slots_.back();
  free_slots_.pop_back();
  return Ticket(this, bytes, slot, in_flight_);
}

void AdmissionGate::changed_locked() {
  ++version_;
  state_changed_.notify_all();
}

void AdmissionGate::release_ticket(std::int64_t bytes, int slot) {
  std::lock_guard lock(state_mutex_);
  --in_flight_;
  in_flight_bytes_ -= bytes;
  free_slots_.push_back(slot);
  changed_locked();
}

// --- admission ---

std::optional<AdmissionGate::Ticket> AdmissionGate::try_admit(std::int64_t predicted_bytes) {
  const std::int64_t bytes = std::max<std::int64_t>(0, predicted_bytes);
  refresh_budget_if_due();
  std::lock_guard lock(state_mutex_);
  if (!queue_.empty() || !fits_locked(bytes)) {  // never barge past a waiter
    ++counters_.rejected_total;
    return std::nullopt;
  }
  return admit_locked(bytes);
}

Result<AdmissionGate::Ticket> AdmissionGate::admit(std::int64_t predicted_bytes,
                                                   std::stop_token stop) {
  return admit_impl(predicted_bytes, std::nullopt, std::move(stop));
}

Result<AdmissionGate::Ticket> AdmissionGate::admit_until(
    std::int64_t predicted_bytes, std::chrono::steady_clock::time_point deadline,
    std::stop_token stop) {
  return admit_impl(predicted_bytes, deadline, std::move(stop));
}

Result<AdmissionGate::Ticket> AdmissionGate::readmit(std::int64_t predicted_bytes,
                                                     std::stop_token stop) {
  {
    std::lock_guard lock(state_mutex_);
    ++counters_.readmitted_total;
  }
  return admit_impl(predicted_bytes, std::nullopt, std::move(stop), QueuePlace::kFront);
}

Result<AdmissionGate::Ticket> AdmissionGate::admit_impl(
    std::int64_t predicted_bytes, std::optional<std::chrono::steady_clock::time_point> deadline,
    std::stop_token stop, QueuePlace place) {
  if (predicted_bytes < 0) return invalid_argument("admission gate: negative predicted bytes");
  refresh_budget_if_due();
  std::unique_lock lock(state_mutex_);
  if (queue_.empty() && fits_locked(predicted_bytes)) return admit_locked(predicted_bytes);

  const std::uint64_t id = next_waiter_id_++;
  const bool readmitted = place == QueuePlace::kFront;
  if (readmitted) {
    // Ahead of every new arrival, behind the tasks that came back before it: readmitted waiters
    // form a block at the head of the queue, in the order they came back (FIFO among them).
    queue_.insert(queue_.begin() + readmit_waiters_, id);
    ++readmit_waiters_;
    changed_locked();  // the old head may no longer be the head
  } else {
    queue_.push_back(id);
  }
  const auto started = now();
  auto left = [&] {
    if (readmitted) --readmit_waiters_;
  };
  auto leave_queue = [&] {
    queue_.erase(std::find(queue_.begin(), queue_.end(), id));
    left();
    changed_locked();  // the next waiter may now be at the head
  };
  while (true) {
    if (stop.stop_requested()) {
      leave_queue();
      ++counters_.cancelled_total;
      return unavailable("admission cancelled while waiting for " + format_bytes(predicted_bytes) +
                         " of GPU memory");
    }
    const auto real_now = std::chrono::steady_clock::now();
    if (deadline && real_now >= *deadline) {
      leave_queue();
      ++counters_.timed_out_total;
      return unavailable("timed out waiting for " + format_bytes(predicted_bytes) +
                         " of GPU memory (limit " + format_bytes(limit_locked()) + ", " +
                         format_bytes(in_flight_bytes_) + " in flight)");
    }
    if (queue_.front() == id && fits_locked(predicted_bytes)) {
      queue_.pop_front();
      left();
      const auto waited = now() - started;
      ++counters_.waits_total;
      counters_.wait_time_total += waited;
      counters_.wait_time_max = std::max<std::chrono::nanoseconds>(counters_.wait_time_max, waited);
      Ticket ticket = admit_locked(predicted_bytes);
      changed_locked();  // the new head may fit too
      return ticket;
    }
    auto wake = real_now + kWaitPollInterval;
    if (deadline) wake = std::min(wake, *deadline);
    const std::uint64_t seen = version_;
    const bool changed =
        state_changed_.wait_until(lock, stop, wake, [&] { return version_ != seen; });
    if (!changed && !stop.stop_requested()) {
      // Nothing happened here for a while: the device's free memory may have grown anyway.
      lock.unlock();
      try {
        refresh_budget_if_due();
      } catch (...) {
        lock.lock();
        leave_queue();  // a waiter left at the head would block everyone behind it
        throw;
      }
      lock.lock();
    }
  }
}

// --- resident weights ---

void AdmissionGate::register_resident(const std::string& name, std::int64_t bytes) {
  std::lock_guard lock(state_mutex_);
  resident_by_name_[name] = std::max<std::int64_t>(0, bytes);
  resident_ = 0;
  for (const auto& [model, model_bytes] : resident_by_name_) resident_ += model_bytes;
  changed_locked();
}

void AdmissionGate::unregister_resident(const std::string& name) {
  std::lock_guard lock(state_mutex_);
  auto it = resident_by_name_.find(name);
  if (it == resident_by_name_.end()) return;
  resident_ -= it->second;
  resident_by_name_.erase(it);
  changed_locked();
}

// --- AIMD ---

void AdmissionGate::on_out_of_memory() {
  std::lock_guard lock(state_mutex_);
  ++counters_.oom_signals_total;
  consecutive_successes_ = 0;
  // One decrease per cohort: nothing was admitted since the last decrease, so this OOM comes from
  // tasks that were already in flight when we shrank.
  if (shrunk_once_ && counters_.admitted_total == admitted_at_last_shrink_) return;

  std::int64_t window = aimd_cap_ ? std::min(*aimd_cap_, task_room_locked()) : task_room_locked();
  if (in_flight_bytes_ > 0) window = std::min(window, in_flight_bytes_);
  const std::int64_t floor = static_cast<std::int64_t>(effective_min_) * largest_task_bytes_;
  const auto shrunk =
      static_cast<std::int64_t>(static_cast<double>(window) * options_.backoff_factor);
  aimd_cap_ = std::max(floor, shrunk);
  shrunk_once_ = true;
  admitted_at_last_shrink_ = counters_.admitted_total;
  ++counters_.shrinks_total;
  changed_locked();
}

void AdmissionGate::set_concurrency_cap(int cap) {
  std::lock_guard lock(state_mutex_);
  const int clamped = std::clamp(cap, effective_min_, options_.max_concurrent);
  if (clamped == concurrency_cap_) return;
  concurrency_cap_ = clamped;
  changed_locked();
}

void AdmissionGate::on_success() {
  std::lock_guard lock(state_mutex_);
  if (!aimd_cap_) return;  // nothing to regrow: the limit already follows the budget
  if (++consecutive_successes_ < options_.successes_per_increase) return;
  consecutive_successes_ = 0;
  std::int64_t step = options_.increase_step_bytes;
  if (step == 0) {
    step =
        static_cast<std::int64_t>(static_cast<double>(threshold_budget_) * kIncreaseStepFraction);
  }
  step = std::max<std::int64_t>(1, step);
  *aimd_cap_ += step;
  if (*aimd_cap_ >= task_room_locked()) aimd_cap_.reset();
  ++counters_.increases_total;
  changed_locked();
}

// --- observation ---

GateStats AdmissionGate::stats() const {
  std::lock_guard lock(state_mutex_);
  GateStats s = counters_;
  s.in_flight = in_flight_;
  s.waiting = static_cast<int>(queue_.size());
  s.in_flight_bytes = in_flight_bytes_;
  s.resident_bytes = resident_;
  s.limit_bytes = limit_locked();
  s.budget_bytes = budget_;
  s.threshold_budget_bytes = threshold_budget_;
  s.aimd_cap_bytes = aimd_cap_;
  s.concurrency_cap = concurrency_cap_;
  s.count_only = options_.count_only;
  s.at_floor = aimd_cap_.has_value() &&
               *aimd_cap_ <= static_cast<std::int64_t>(effective_min_) * largest_task_bytes_;
  s.largest_task_bytes = largest_task_bytes_;
  return s;
}

}  // namespace segmentor
