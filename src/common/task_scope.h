// TaskScope: marks one task's work on the calling thread, so that a lower layer can keep state
// for the task (the frame uploaded once for every model: Note [One upload per task],
// models/image_tensor.h) and drop it when the task ends.
#pragma once

#include <cstdint>
#include <functional>

namespace segmentor {

// RAII, per thread. Scopes nest: an inner one belongs to the outer task (same id, and its exit
// functions run when the outermost scope ends). Not copyable or movable; thread-compatible (each
// thread has its own).
class TaskScope {
 public:
  TaskScope();
  ~TaskScope();  // the outermost runs the exit functions, last registered first
  TaskScope(const TaskScope&) = delete;
  TaskScope& operator=(const TaskScope&) = delete;

  // The id of the task in scope on this thread, unique in the process; 0 = none.
  static std::uint64_t current();
  // Runs `fn` on this thread when the current task's scope ends. Without a scope, returns false
  // and does not keep `fn`.
  static bool at_exit(std::function<void()> fn);
};

}  // namespace segmentor
