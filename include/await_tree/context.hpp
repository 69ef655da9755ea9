// SPDX-License-Identifier: Apache-2.0
#pragma once

// Which task, and where in its tree, the code running on a thread belongs to.
//
// The contract (README "How a task's context follows it"):
//
// * Integrated coroutines (promise_mixin plus on_final_suspend in the
//   promise, see promise.hpp) are exact on every control flow: the position
//   of each lives in its promise, taken when it starts from what the thread
//   vouches for, and it tells the thread whenever it starts, resumes,
//   suspends or ends (a promise whose unhandled_exception() rethrows says
//   so with rethrow_unhandled_exception). `current_tree()` is exact in
//   their code.
// * Any other coroutine is never wrong: its instrumented awaits only
//   forward. The library sees it at nothing else, so it cannot tell which
//   task runs it (another task may resume it inline or transfer to it, and
//   a destroyed coroutine's frame address is reused). An integrated
//   coroutine it starts while a task's code has resumed it inline is taken
//   for that task's: the one wrong tree no check can catch (README, "Mixing
//   task types").
// * `task_context`/`context_scope` below bracket code the library cannot see
//   (a callback run for a task by a runtime): optional.
//
// detail/thread_context.hpp has the thread's states, detail/suspension.hpp
// the protocol that keeps them.

#include <await_tree/detail/suspension.hpp>
#include <await_tree/detail/tree_state.hpp>

namespace await_tree {

/// A task and a position in its tree, captured on one thread to be resumed
/// under on another: an optional integration point for code the library
/// cannot see.
///
///     auto ctx = await_tree::task_context::current();    // when scheduling
///     pool.post([h, ctx] {
///       await_tree::context_scope scope(ctx);             // when running it
///       callback();
///     });
///
/// An empty context (default-constructed, or captured outside any task) is
/// useful too: code run under it belongs to no task.
class task_context {
 public:
  task_context() noexcept = default;

  /// The calling thread's context; empty outside any task.
  [[nodiscard]] static task_context current() { return capture(); }

  [[nodiscard]] bool empty() const noexcept { return !tree_; }

 private:
  friend class context_scope;

  [[gnu::noinline]] static task_context capture() {
    task_context ctx;
    const detail::thread_context& tc = detail::this_thread_context();
    const detail::context_state& here = tc.here;
    if (!tc.says_task_runs() || here.at.empty()) return ctx;
    detail::tree_state& t = *here.at.tree;
    const auto lock = t.lock();
    if (t.is_open_at(here.at)) {
      ctx.tree_ = detail::tree_ref::share(&t);
      ctx.position_ = here.at;
    }
    return ctx;
  }

  detail::tree_ref tree_;  // keeps the incarnation while captured
  detail::position position_;
};

/// Runs the code in its scope under a captured context, and afterwards puts
/// this thread's context back as it was.
class context_scope {
 public:
  [[gnu::noinline]] explicit context_scope(const task_context& ctx)
      : saved_(detail::this_thread_context().here) {
    const detail::context_kind kind =
        ctx.empty() ? detail::context_kind::none : detail::context_kind::window;
    detail::this_thread_context().set({ctx.position_, nullptr, kind});
  }
  context_scope(const context_scope&) = delete;
  context_scope& operator=(const context_scope&) = delete;
  [[gnu::noinline]] ~context_scope() { detail::this_thread_context().set(saved_); }

 private:
  detail::context_state saved_;
};

}  // namespace await_tree
