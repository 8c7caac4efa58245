#include "pipeline/slot_threads.h"

#include <exception>
#include <future>
#include <stdexcept>
#include <string>
#include <utility>

namespace segmentor {

SlotThreads::~SlotThreads() {
  for (auto& s : slots_) {
    if (!s) continue;
    {
      std::lock_guard lock(s->mutex);
      s->stopping = true;
    }
    s->changed.notify_all();
    s->thread.join();
  }
}

SlotThreads::Slot& SlotThreads::slot(int index) {
  if (index < 0) {
    throw std::invalid_argument("slot threads: negative slot " + std::to_string(index));
  }
  std::lock_guard lock(slots_mutex_);
  if (slots_.size() <= static_cast<std::size_t>(index)) slots_.resize(index + 1);
  auto& s = slots_[index];
  if (!s) {
    s = std::make_unique<Slot>();
    Slot& started = *s;
    s->thread = std::thread([&started] { loop(started); });
  }
  return *s;
}

void SlotThreads::loop(Slot& s) {
  while (true) {
    std::function<void()> work;
    {
      std::unique_lock lock(s.mutex);
      s.changed.wait(lock, [&] { return s.stopping || !s.queue.empty(); });
      if (s.queue.empty()) return;  // stopping, nothing left
      work = std::move(s.queue.front());
      s.queue.pop_front();
    }
    work();
  }
}

void SlotThreads::run(int index, const std::function<void()>& work) {
  std::packaged_task<void()> task(work);
  std::future<void> done = task.get_future();
  Slot& s = slot(index);
  {
    std::lock_guard lock(s.mutex);
    s.queue.emplace_back([&task] { task(); });
  }
  s.changed.notify_one();
  done.get();  // rethrows what `work` threw
}

int SlotThreads::threads_started() const {
  std::lock_guard lock(slots_mutex_);
  int n = 0;
  for (const auto& s : slots_) n += s ? 1 : 0;
  return n;
}

}  // namespace segmentor
