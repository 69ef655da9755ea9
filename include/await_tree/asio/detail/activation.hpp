// SPDX-License-Identifier: Apache-2.0
#pragma once

// An activation: one handler of a task running on this OS thread (see
// task_state.hpp). Activations nest when a handler dispatches another one
// inline; each is a stack object, linked to the one it interrupted.

#include <await_tree/asio/detail/task_state.hpp>
#include <await_tree/detail/thread_context.hpp>
#include <await_tree/detail/tree_state.hpp>

namespace await_tree::asio::detail {

struct activation {
  task_state* task;             // kept alive by the executor running the handler
  thread_id thread = nullptr;   // the awaitable thread running here, once an await saw it
  activation* outer = nullptr;  // the activation this one interrupted
};

inline activation*& innermost_activation() noexcept {
  thread_local activation* innermost = nullptr;
  return innermost;
}

/// Where code of `task` whose awaitable thread is not known yet (a handler
/// that has not reached an instrumented await) is shown to run: at the task's
/// main position, which is where that code's next node would attach and an
/// ancestor of any branch the handler may resume.
inline core::position unknown_thread_position(task_state& task) noexcept {
  core::tree_state& t = task.tree();
  const auto lock = t.lock();
  return t.at(task.main_position());
}

/// Runs a handler of `task` as an activation. It is also a window of the task
/// in the core's thread context (see detail/thread_context.hpp), so that
/// `current_tree()` names the task and the marker shows where it runs.
class activation_scope {
 public:
  explicit activation_scope(task_state& task) noexcept
      : record_{&task, nullptr, innermost_activation()}, saved_(core::this_thread_context().here) {
    core::this_thread_context().set(
        {unknown_thread_position(task), &record_, core::context_kind::window});
    innermost_activation() = &record_;
  }
  activation_scope(const activation_scope&) = delete;
  activation_scope& operator=(const activation_scope&) = delete;
  ~activation_scope() {
    innermost_activation() = record_.outer;
    core::this_thread_context().set(saved_);
  }

 private:
  activation record_;
  core::context_state saved_;
};

/// Records that `a`'s thread now runs at `position`, for the `<== current`
/// marker. Requires the tree's mutex.
inline void move_to(activation& a, thread_id thread, core::node_ref position) noexcept {
  a.thread = thread;
  core::thread_context& tc = core::this_thread_context();
  // Only while the activation's own window is the thread's state: code nested
  // inside it (a core task resumed inline) keeps its own position.
  if (tc.here.kind != core::context_kind::window || tc.here.frame != &a) return;
  tc.set({a.task->tree().at(position), &a, core::context_kind::window});
}

}  // namespace await_tree::asio::detail
