// SPDX-License-Identifier: Apache-2.0
#pragma once

// Coroutine-local storage: which task, and where in its tree, the code running
// on this thread belongs to.
//
// C++ coroutines have no hook on resumption or suspension other than their
// awaiters, so the context lives in a per-thread stack that the awaiters keep
// up to date:
//
// * An entry is pushed when a task is resumed from outside it (an instrumented
//   await completes on a thread that was not already running that task at that
//   node), and popped when that activation ends (an instrumented await suspends
//   and control goes back to whoever called resume()).
// * Inside an activation the top entry is edited in place: an instrumented
//   await moves it to its node; completing moves it back to the parent. A lazy
//   child started by symmetric transfer simply inherits it.
// * While an instrumented await_suspend runs the wrapped await_suspend, the top
//   entry is marked `nested`: whatever that call resumes inline (when_all
//   starting its children one after another) ends by restoring the entry to the
//   await's node instead of popping it.
// * Each entry also names the coroutine its activation is running (set where
//   control reaches a coroutine through an await: a resumption, a symmetric
//   transfer). A suspension in any other coroutine is a nested call (an eager
//   coroutine started inline) that returns to its caller: the entry is restored
//   to where the caller was, not popped.
// * A nested call that hands over to a child by an instrumented symmetric
//   transfer starts a chain of its own, which returns to the caller only when
//   the chain's own running coroutine suspends: it gets an entry of its own
//   (a `call`), pushed over the caller's, which is `paused` (its node not
//   counted as running) until the call's entry goes, however it goes: the top
//   entry is never paused.
//
// Without an end-of-resume hook, a task that suspends at an await that is not
// instrumented leaves its entry behind. Such stale entries are harmless by
// construction: they hold counted references (never dangling), a task whose
// root ended accepts no new nodes, and the stack is a bounded ring that drops
// its oldest entries. `context_scope` gives executors exact boundaries.

#include <await_tree/detail/tree_state.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <utility>

namespace await_tree {
namespace detail {

/// Where one thread's execution is inside one task's tree.
struct context_entry {
  tree_state* tree = nullptr;  // a counted reference while non-null
  node_ref node;               // the current node: new awaits attach here
  node_ref base;               // where an inline-resumed activation restarts
  bool nested = false;         // an instrumented await_suspend is running
  void* running = nullptr;     // the coroutine this activation runs (its address)
  node_ref call;               // for a call: the await whose transfer started it
  bool paused = false;         // a call runs over this entry; `node` is not counted
  std::uint64_t epoch = 0;     // unique to this activation (see context_stack::push)

  /// An activation of `tree` (a counted reference, or null) from `node`.
  static context_entry activation(tree_state* tree, node_ref node, void* running,
                                  bool nested = false) noexcept {
    context_entry e;
    e.tree = tree;
    e.node = e.base = node;
    e.nested = nested;
    e.running = running;
    return e;
  }
};

class context_stack {
 public:
  static context_stack& local() noexcept {
    thread_local context_stack stack;
    return stack;
  }

  context_stack() noexcept : pushes_(first_epoch()) {}
  context_stack(const context_stack&) = delete;
  context_stack& operator=(const context_stack&) = delete;
  ~context_stack() { truncate(0); }

  [[nodiscard]] std::size_t depth() const noexcept { return depth_; }

  /// The innermost entry, or nullptr when this thread runs outside any task.
  [[nodiscard]] context_entry* top() noexcept {
    return depth_ == 0 ? nullptr : &ring_[(depth_ - 1) % capacity];
  }

  /// Takes over the reference held by `entry.tree`. The caller has already
  /// counted `entry.node` as running, and holds no tree's mutex (dropping the
  /// oldest entry of a full ring locks that entry's tree).
  void push(context_entry entry) noexcept {
    context_entry& slot = ring_[depth_ % capacity];
    if (depth_ >= capacity) drop(std::exchange(slot, {}));  // the oldest, most likely stale
    slot = entry;
    slot.epoch = ++pushes_;
    ++depth_;
  }

  void truncate(std::size_t depth) noexcept {
    if (depth_ <= depth) return;
    for (; depth_ > depth; --depth_) drop(std::exchange(ring_[(depth_ - 1) % capacity], {}));
    resume_caller();
  }

  /// Pops the top entry, whose node the caller has already uncounted.
  void end_activation() noexcept {
    top()->node = {};
    truncate(depth_ - 1);
  }

  /// Starts a call (see above) run by `head`, from the top entry, which is at
  /// the call's first node, `n`: the top entry goes back to `caller_node` and
  /// pauses. Takes no lock: `n` stays counted once, by the call's entry.
  void start_call(node_ref caller_node, node_ref n, void* head) noexcept {
    context_entry& caller = *top();
    caller.node = caller_node;
    caller.paused = true;
    caller.tree->acquire();
    context_entry call = context_entry::activation(caller.tree, n, head);
    call.call = n;
    push(call);
  }

 private:
  /// After a call's entry went: its caller's entry, now on top, runs again.
  void resume_caller() noexcept {
    context_entry* caller = top();
    if (caller == nullptr || !caller->paused) return;
    caller->paused = false;
    const auto lock = caller->tree->lock();
    caller->tree->move_running({}, caller->node);
  }

  static void drop(context_entry entry) noexcept {
    if (entry.tree == nullptr) return;
    if (entry.node != node_ref{} && !entry.paused) {
      const auto lock = entry.tree->lock();
      entry.tree->move_running(entry.node, {});
    }
    entry.tree->release();
  }

  /// Epochs are unique across threads (an await may resume on another
  /// thread, whose entries must never pass for the one it suspended in): each
  /// thread counts from a base of its own, 2^32 apart.
  static std::uint64_t first_epoch() noexcept {
    static std::atomic<std::uint64_t> threads{0};
    return threads.fetch_add(1, std::memory_order_relaxed) << 32;
  }

  static constexpr std::size_t capacity = 32;
  std::array<context_entry, capacity> ring_{};
  std::size_t depth_ = 0;
  std::uint64_t pushes_;
};

}  // namespace detail

/// A task and a position in its tree, captured on one thread to be resumed
/// under on another: the executor-side integration point.
///
///     auto ctx = await_tree::task_context::current();    // when scheduling h
///     pool.post([h, ctx] {
///       await_tree::context_scope scope(ctx);             // when running it
///       h.resume();
///     });
///
/// An empty context (default-constructed, or captured outside any task) is
/// useful too: resuming under it hides whatever stale state the thread holds.
class task_context {
 public:
  task_context() noexcept = default;

  /// The calling thread's context; empty outside any task.
  [[nodiscard]] static task_context current() noexcept {
    task_context ctx;
    if (const detail::context_entry* top = detail::context_stack::local().top(); top != nullptr) {
      ctx.tree_ = detail::tree_ref::share(top->tree);
      ctx.node_ = top->node;
    }
    return ctx;
  }

  [[nodiscard]] bool empty() const noexcept { return !tree_; }

 private:
  friend class context_scope;
  detail::tree_ref tree_;
  detail::node_ref node_;
};

/// Runs the code in its scope (typically one `resume()`) under a captured
/// context, and afterwards restores this thread's context exactly, removing
/// whatever the resumed code left behind.
class context_scope {
 public:
  explicit context_scope(const task_context& ctx) : depth_(stack().depth()) {
    auto entry = detail::context_entry::activation(nullptr, ctx.node_, nullptr);
    if (detail::tree_state* t = ctx.tree_.get(); t != nullptr) {
      const auto lock = t->lock();
      if (!t->is_closed()) {
        t->acquire();
        t->move_running({}, ctx.node_);
        entry.tree = t;
      }
    }
    stack().push(entry);
  }
  context_scope(const context_scope&) = delete;
  context_scope& operator=(const context_scope&) = delete;
  ~context_scope() { stack().truncate(depth_); }

 private:
  static detail::context_stack& stack() noexcept { return detail::context_stack::local(); }
  std::size_t depth_;
};

}  // namespace await_tree
