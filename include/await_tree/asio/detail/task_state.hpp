// SPDX-License-Identifier: Apache-2.0
#pragma once

// How the Asio integration knows where in which task the running code is.
//
// Asio runs a spawned coroutine, and every `asio::awaitable` it awaits, on one
// "awaitable thread": a stack of coroutine frames that Asio resumes from
// completion handlers, on whichever OS thread runs the handler. Two facts make
// the tree exact without any hook inside Asio:
//
// * Every handler of a task runs through the task's executor (a
//   task_executor), which opens an *activation* around it: for as long as the
//   handler runs, this OS thread works for that task. Plain awaits therefore
//   cannot leave stale state behind: the activation ends with the handler.
// * An awaitable thread has a stable identity for its whole life (the address
//   of a flag in its bottom frame, which Asio lets a coroutine read for free).
//   Each instrumented await pushes a record on its awaitable thread's stack in
//   the task, so the next instrumented await of that thread, however many
//   plain awaits later, attaches under the right node.
//
// Concurrency inside a task (`&&`, `||`, parallel groups) spawns new awaitable
// threads with the task's executor. A new thread's first instrumented await,
// when it runs before the thread ever suspended (Asio starts such branches
// inline), attaches where its launcher was. A thread with no open
// instrumented await that has suspended before is not shown: it may be a
// branch whose launcher has moved on, or a coroutine of no task that a
// handler of this task resumed inline (instrument.hpp).

#include <await_tree/context.hpp>
#include <await_tree/detail/counted_ref.hpp>
#include <await_tree/detail/tree_state.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace await_tree::asio::detail {

namespace core = await_tree::detail;

/// An Asio awaitable thread, named by the address of its bottom frame's
/// `has_context_switched` flag.
using thread_id = const void*;

/// An instrumented await in progress: its node, on its thread's stack.
struct frame_record {
  thread_id thread = nullptr;
  core::node_ref node;
  frame_record* below = nullptr;  // the same thread's enclosing await, if any
};

/// The Asio side of one task: the task's tree and, per awaitable thread, the
/// innermost instrumented await in progress. Reference counted: the task's
/// executors, its open awaits and its root frame hold it.
///
/// Every member function except `create`, `acquire`, `release` and `tree`
/// requires the tree's mutex.
class task_state {
 public:
  static task_state* create(core::tree_state& t) { return new task_state(t); }
  task_state(const task_state&) = delete;
  task_state& operator=(const task_state&) = delete;

  void acquire() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  [[nodiscard]] core::tree_state& tree() const noexcept { return *tree_.get(); }

  void set_main_thread(thread_id thread) noexcept { main_thread_ = thread; }

  /// Where `thread`'s next instrumented await attaches, when that is known:
  /// under its innermost one in progress, or at the root for the main thread.
  [[nodiscard]] std::optional<core::node_ref> position_of(thread_id thread) const noexcept {
    if (const frame_record* top = top_of(thread); top != nullptr) return top->node;
    if (thread == main_thread_) return tree().root();
    return std::nullopt;
  }
  [[nodiscard]] core::node_ref main_position() const noexcept {
    return position_of(main_thread_).value_or(tree().root());
  }

  /// Makes push() unable to throw: call it before creating the node.
  void make_room() { tops_.reserve(tops_.size() + 1); }

  void push(frame_record& r) noexcept {
    const auto top = find(r.thread);
    r.below = top != tops_.end() ? *top : nullptr;
    if (top != tops_.end()) {
      *top = &r;
    } else {
      tops_.push_back(&r);
    }
  }

  /// Removes `r` from its thread's stack. Frames of one thread end innermost
  /// first, so `r` is normally the top; the general case is kept for safety.
  void pop(const frame_record& r) noexcept {
    const auto top = find(r.thread);
    if (top == tops_.end()) return;
    if (*top == &r) {
      if (r.below != nullptr) {
        *top = r.below;
      } else {
        tops_.erase(top);
      }
      return;
    }
    for (frame_record* above = *top; above != nullptr; above = above->below) {
      if (above->below == &r) {
        above->below = r.below;
        return;
      }
    }
  }

 private:
  explicit task_state(core::tree_state& t) : tree_(core::tree_ref::share(&t)) {}
  ~task_state() = default;

  // A task has a handful of threads with awaits in progress: a linear search.
  template <class Tops>
  static auto find_in(Tops& tops, thread_id thread) noexcept {
    return std::find_if(tops.begin(), tops.end(),
                        [thread](const frame_record* r) { return r->thread == thread; });
  }
  [[nodiscard]] std::vector<frame_record*>::iterator find(thread_id thread) noexcept {
    return find_in(tops_, thread);
  }
  [[nodiscard]] const frame_record* top_of(thread_id thread) const noexcept {
    const auto top = find_in(tops_, thread);
    return top != tops_.end() ? *top : nullptr;
  }

  std::atomic<std::uint32_t> refs_{1};
  core::tree_ref tree_;
  thread_id main_thread_ = nullptr;
  std::vector<frame_record*> tops_;  // the top of each thread that has an await in progress
};

using task_ref = core::counted_ref<task_state>;

}  // namespace await_tree::asio::detail
