// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/asio/detail/activation.hpp>
#include <await_tree/asio/detail/flavour.hpp>
#include <await_tree/span.hpp>

#include <optional>
#include <utility>

namespace await_tree::asio {
namespace detail {

/// Where a thread that has never suspended attaches its first node: where the
/// code that started it was, in the activation it interrupted.
inline core::node_ref launch_position(const activation& a, const task_state& task,
                                      thread_id self) noexcept {
  const bool own = a.thread == nullptr || a.thread == self;  // the thread's first dispatch
  const activation* launcher = own ? a.outer : &a;
  if (launcher != nullptr && launcher->task == &task && launcher->thread != nullptr) {
    if (const auto position = task.position_of(launcher->thread)) return *position;
  }
  return task.main_position();
}

/// The node of one instrumented Asio await, owned by the frame of the
/// coroutine that performs the await, so that it goes when the await
/// completes, throws or is destroyed with its awaitable thread.
class frame_guard {
 public:
  explicit frame_guard(span label) noexcept : label_(std::move(label)) {}
  frame_guard(const frame_guard&) = delete;
  frame_guard& operator=(const frame_guard&) = delete;
  ~frame_guard() { close(); }

  /// Attaches the node in the task that the running handler belongs to;
  /// outside any task, does nothing. `context_switched` is the awaitable
  /// thread's flag: its address names the thread, and it stays false until
  /// the thread first suspends.
  ///
  /// Kept out of line, like close(): inlined into the coroutine, clang 16
  /// may reuse the address of a thread_local computed on the thread that ran
  /// the coroutine before its last suspension (LLVM #47179).
  [[gnu::noinline]] void open(const bool& context_switched) {
    activation* a = innermost_activation();
    if (a == nullptr) return;
    task_state& task = *a->task;
    core::tree_state& t = task.tree();
    const thread_id self = &context_switched;
    const auto lock = t.lock();
    if (t.is_closed() || !t.records(label_)) return;
    const std::optional<core::node_ref> known = task.position_of(self);
    // A thread the task has not seen that suspended before is a branch whose
    // first node comes late (its launcher may have moved on, as after a
    // detached co_spawn), or a coroutine of no task, or of another, that a
    // handler of this task resumed inline (a channel or an event
    // dispatching to its waiter): which one, and under what, cannot be told.
    if (!known && context_switched) return;
    const core::node_ref parent = known ? *known : launch_position(*a, task, self);
    task.make_room();
    record_ = {self, t.add(parent, &label_)};
    task.push(record_);
    task_ = task_ref::share(&task);
    move_to(*a, self, record_.node);
  }

 private:
  [[gnu::noinline]] void close() noexcept {
    if (!task_) return;
    task_state& task = *task_.get();
    core::tree_state& t = task.tree();
    bool last = false;
    {
      const auto lock = t.lock();
      last = t.remove(record_.node);
      task.pop(record_);
      activation* a = innermost_activation();
      if (a != nullptr && a->task == &task &&
          (a->thread == nullptr || a->thread == record_.thread)) {
        move_to(*a, record_.thread,
                task.position_of(record_.thread).value_or(task.main_position()));
      }
    }
    if (last) t.release();
    task_ = {};  // last, as it may own the tree
  }

  span label_;
  task_ref task_;  // set while the node exists
  frame_record record_;
};

}  // namespace detail

/// `co_await await_tree::asio::instrument(timer.async_wait(asio::use_awaitable), "sleep")`
///
/// Shows the await as a node of the calling task's tree while it runs. Asio
/// coroutines can only await `asio::awaitable`s, so the wrapper is one: a
/// coroutine that awaits `awaitable` under the node. Inside a task spawned by
/// `await_tree::asio::co_spawn`, anywhere; elsewhere it only forwards. Takes
/// the awaitables of standalone Asio and of Boost.Asio alike
/// (`await_tree::boost_asio::instrument` is this function).
///
/// (Spelled as the template it is, so that it is more specialised than the
/// core's `await_tree::instrument`, which argument-dependent lookup finds too.)
template <template <class, class> class Awaitable, class T, class Executor>
Awaitable<T, Executor> instrument(Awaitable<T, Executor> awaitable,
                                  span label) requires detail::awaitable<Awaitable<T, Executor>> {
  using context_switched = typename detail::flavour_of<Awaitable<T, Executor>>::context_switched;
  detail::frame_guard guard(std::move(label));
  // Asio hands any of its coroutines this flag of the awaitable thread for
  // free (its own co_spawn uses it); its address is the thread's identity.
  guard.open(co_await context_switched{});
  co_return co_await std::move(awaitable);
}

}  // namespace await_tree::asio
