#include "common/task_scope.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace segmentor {
namespace {

TEST(TaskScopeTest, EachTaskHasItsOwnIdAndNestedScopesShareIt) {
  EXPECT_EQ(TaskScope::current(), 0u);
  std::uint64_t first = 0;
  {
    TaskScope task;
    first = TaskScope::current();
    EXPECT_NE(first, 0u);
    {
      TaskScope inner;  // the same task
      EXPECT_EQ(TaskScope::current(), first);
    }
    EXPECT_EQ(TaskScope::current(), first);
  }
  EXPECT_EQ(TaskScope::current(), 0u);
  TaskScope next;
  EXPECT_NE(TaskScope::current(), first);  // never reused, even on the same thread
  std::uint64_t other_thread = 0;
  std::thread([&] {
    EXPECT_EQ(TaskScope::current(), 0u);  // per thread
    TaskScope there;
    other_thread = TaskScope::current();
  }).join();
  EXPECT_NE(other_thread, TaskScope::current());
}

TEST(TaskScopeTest, ExitFunctionsRunWhenTheOutermostScopeEndsLastFirst) {
  std::vector<int> ran;
  EXPECT_FALSE(TaskScope::at_exit([&] { ran.push_back(0); }));  // no task: not kept
  {
    TaskScope task;
    EXPECT_TRUE(TaskScope::at_exit([&] { ran.push_back(1); }));
    {
      TaskScope inner;
      EXPECT_TRUE(TaskScope::at_exit([&] { ran.push_back(2); }));
    }
    EXPECT_TRUE(ran.empty());  // the task is still running
  }
  EXPECT_EQ(ran, (std::vector<int>{2, 1}));
  { TaskScope again; }
  EXPECT_EQ(ran.size(), 2u);  // ran once, not again with the next task
}

}  // namespace
}  // namespace segmentor
