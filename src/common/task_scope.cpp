#include "common/task_scope.h"

#include <atomic>
#include <utility>
#include <vector>

namespace segmentor {

namespace {

std::atomic<std::uint64_t> next_id{1};

struct ThreadTask {
  std::uint64_t id = 0;
  int depth = 0;
  std::vector<std::function<void()>> exits;
};

ThreadTask& thread_task() {
  thread_local ThreadTask task;
  return task;
}

}  // namespace

TaskScope::TaskScope() {
  ThreadTask& task = thread_task();
  if (task.depth++ == 0) task.id = next_id.fetch_add(1, std::memory_order_relaxed);
}

TaskScope::~TaskScope() {
  ThreadTask& task = thread_task();
  if (--task.depth > 0) return;
  std::vector<std::function<void()>> exits = std::move(task.exits);
  task.exits.clear();
  task.id = 0;
  for (auto it = exits.rbegin(); it != exits.rend(); ++it) (*it)();
}

std::uint64_t TaskScope::current() { return thread_task().id; }

bool TaskScope::at_exit(std::function<void()> fn) {
  ThreadTask& task = thread_task();
  if (task.depth == 0) return false;
  task.exits.push_back(std::move(fn));
  return true;
}

}  // namespace segmentor
