// SPDX-License-Identifier: Apache-2.0
#pragma once

// An activation: one handler of a task running on this OS thread (see
// task_state.hpp). Activations nest when a handler dispatches another one
// inline; each is a stack object, linked to the one it interrupted.

#include <await_tree/asio/detail/task_state.hpp>
#include <await_tree/context.hpp>

#include <cstddef>

namespace await_tree::asio::detail {

struct activation {
  task_state* task;               // kept alive by the executor running the handler
  thread_id thread = nullptr;     // the awaitable thread running here, once an await saw it
  activation* outer = nullptr;    // the activation this one interrupted
  std::size_t context_depth = 0;  // the core context stack below this activation's entry
};

inline activation*& innermost_activation() noexcept {
  thread_local activation* innermost = nullptr;
  return innermost;
}

/// Runs a handler of `task` as an activation. It also enters the task in the
/// core's context stack, so that `current_tree()` names the task.
class activation_scope {
 public:
  explicit activation_scope(task_state& task) noexcept
      : record_{&task, nullptr, innermost_activation(), stack().depth()} {
    task.tree().acquire();  // the entry's reference
    stack().push(core::context_entry::activation(&task.tree(), {}, nullptr));
    innermost_activation() = &record_;
  }
  activation_scope(const activation_scope&) = delete;
  activation_scope& operator=(const activation_scope&) = delete;
  ~activation_scope() {
    innermost_activation() = record_.outer;
    stack().truncate(record_.context_depth);  // uncounts the running position
  }

 private:
  static core::context_stack& stack() noexcept { return core::context_stack::local(); }
  activation record_;
};

/// Records that `a`'s thread now runs at `position`, for the `<== current`
/// marker. Requires the tree's mutex.
inline void move_to(activation& a, thread_id thread, core::node_ref position) noexcept {
  a.thread = thread;
  core::context_stack& stack = core::context_stack::local();
  core::context_entry* e = stack.top();
  // Only while the activation's own entry is the innermost one: code nested
  // inside it (a core task resumed inline) keeps its own position.
  if (stack.depth() != a.context_depth + 1 || e->tree != &a.task->tree()) return;
  a.task->tree().move_running(e->node, position);
  e->node = position;
}

}  // namespace await_tree::asio::detail
