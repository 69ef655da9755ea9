// SPDX-License-Identifier: Apache-2.0
#pragma once

// The protocol every await-tree awaiter follows around the awaiter it wraps
// (thread_context.hpp has the states, context.hpp the contract):
//
//   await_suspend: begin_*() -> wrapped await_suspend -> end_suspend()
//   await_resume:  resume_*()
//
// Only *integrated* coroutines (their promise derives from promise_mixin
// and their final_suspend goes through on_final_suspend) take part: each
// keeps its position in its promise and tells the thread whenever it starts,
// resumes, suspends or ends, so the thread's state is exact while it runs.
// Any other coroutine is seen only at its instrumented awaits, which cannot
// tell which task runs it (thread_context.hpp): they only forward.
//
// Anything after the wrapped await_suspend may run while the coroutine is
// already resumed, or destroyed, on another thread: end_suspend() therefore
// takes only values copied out of the frame beforehand (a `suspension`), and
// touches only this thread's state.
//
// The begin_*, end_* steps are inlined into the await_suspend functions that
// run them, which are out of line themselves (tracing_awaiter.hpp,
// promise.hpp), so they read the thread-local in place; the resume_* steps
// run from coroutine bodies and stay out of line (see thread_context.hpp).

#include <await_tree/detail/thread_context.hpp>
#include <await_tree/detail/tree_state.hpp>

#include <coroutine>
#include <utility>

namespace await_tree::detail {

/// The node an instrumented awaitable owns in a task's tree: from the first
/// time it is awaited inside a task until that await completes or the
/// awaitable is destroyed. Keeping the node in the awaitable (not the awaiter)
/// is what lets an abandoned awaitable, awaited again, re-attach instead of
/// appearing twice.
class node_owner {
 public:
  explicit node_owner(span label) noexcept : label_(std::move(label)) {}

  // A node points at its owner's span; moving the owner re-points it, under
  // the tree's mutex so that no snapshot reads a moved-from name.
  node_owner(node_owner&& other)
      : label_(other.tree_ != nullptr ? span(other.label_) : std::move(other.label_)),
        tree_(std::exchange(other.tree_, nullptr)),
        node_(other.node_) {
    if (tree_ != nullptr) {
      const auto lock = tree_->lock();
      tree_->relabel(node_, &label_);
    }
  }
  node_owner& operator=(node_owner&&) = delete;
  ~node_owner() { reset(); }

  [[nodiscard]] const span& label() const noexcept { return label_; }
  [[nodiscard]] bool has_node() const noexcept { return tree_ != nullptr; }

  /// Puts the node under `parent`, creating it or re-attaching it, and
  /// returns its position; nothing when the task has ended or the span is
  /// not recorded there. `parent` is an integrated coroutine's own
  /// position: a node whose parent is gone is a detached root.
  position attach(const position& parent) {
    if (parent.empty() && tree_ == nullptr) return {};  // outside any task
    return attach_in_tree(parent);
  }

  /// Removes the node, if any; its pending children become detached.
  void reset() noexcept {
    if (tree_ != nullptr) remove_node();
  }

 private:
  // Both out of line: an await outside any task, which owns no node, only
  // tests two pointers inline.
  [[gnu::noinline]] position attach_in_tree(const position& parent) {
    if (tree_ != nullptr && tree_ != parent.tree) reset();  // awaited again elsewhere
    if (parent.empty()) return {};
    tree_state& t = *parent.tree;
    const auto lock = t.lock();
    if (!t.is_open_at(parent) || !t.records(label_)) return {};
    if (tree_ == &t && t.contains(node_)) {
      t.reattach(node_, parent.node);
    } else {
      tree_ = &t;
      node_ = t.add(parent.node, &label_);
    }
    return t.at(node_);
  }

  [[gnu::noinline]] void remove_node() noexcept {
    tree_state* t = std::exchange(tree_, nullptr);
    bool last = false;
    {
      const auto lock = t->lock();
      last = t->remove(node_);
    }
    if (last) t->release();
  }

  span label_;
  tree_state* tree_ = nullptr;  // while it holds a node, which keeps the tree
  node_ref node_;
};

/// An integrated coroutine's part of the context, in its promise.
struct coroutine_context {
  position home;          // where its awaits attach; empty outside any task
  context_state resumer;  // what its activation gives back to the thread
  bool started = false;
};

/// How the wrapped await_suspend handed control on.
enum class handoff {
  resumes_here,  // returned false or its own handle: no suspension
  transfers,     // returned another coroutine to run now, on this thread
  suspended,     // control goes back to whoever resumed the coroutine
};

inline handoff classify(std::coroutine_handle<> next, std::coroutine_handle<> self) noexcept {
  if (next == self) return handoff::resumes_here;
  if (next == std::noop_coroutine()) return handoff::suspended;
  return handoff::transfers;
}

/// What an await_suspend keeps on the real stack across the hand-off.
struct suspension {
  context_state before;     // the thread's state when the await began
  context_state give_back;  // the thread's state once the coroutine suspended
  position at;              // where code started inside the await belongs
  bool changed = false;     // whether the thread's state changed before the hand-off
};

/// Starts an integrated coroutine's context: the position and what to give
/// back that the await of its task type carried to it, else the position
/// the thread vouches for it and what ran before it. Taken at its first
/// await or its end, not when it starts (a promise has no hook there), so a
/// carried position is bound at the transfer: the code before the first
/// await may wake other tasks inline.
[[gnu::always_inline]] inline void start(coroutine_context& c, thread_context& tc,
                                         const void* self) noexcept {
  c.started = true;
  if (tc.idle()) return;  // outside any task, with nothing to give back
  if (const carried_state* carried = tc.take_carried_to(self)) {
    c.home = carried->at;
    c.resumer = carried->state;
  } else {
    c.home = tc.vouches_for(self) ? tc.here.at : position{};
    tc.take_resumer(self, c.resumer);
  }
  tc.run(c.home, self);
}

/// Whether an await of integrated coroutine `c` begins outside any task: the
/// coroutine has no position and nothing to give back, the thread knows of no
/// task and holds nothing back, and the awaitable owns no node. Then
/// begin_integrated would change nothing but `started`, which this sets, and
/// the await may go through end_suspend with an empty suspension: every
/// state without a position means what `none` means (thread_context::idle).
/// That end_suspend is still needed: the wrapped await_suspend may run an
/// activation that leaves the thread knowing of a task.
[[gnu::always_inline]] inline bool begins_outside_any_task(coroutine_context& c,
                                                           const node_owner* owner) noexcept {
  const thread_context& tc = thread_context_in_place();
  if (!c.home.empty() || !c.resumer.at.empty() || !tc.idle() || tc.here.held_for != nullptr ||
      (owner != nullptr && owner->has_node())) {
    return false;
  }
  c.started = true;
  return true;
}

/// The suspension of an await that begins outside any task.
inline constexpr suspension outside_any_task{};

/// Before the hand-off of an integrated coroutine's await. A plain await
/// leaves the thread as it is: code started inside it belongs where the
/// coroutine runs. An instrumented one attaches its node there (or under the
/// node of the await it is nested in) and makes it a window for that code.
///
/// The suspension is returned whole, every member given: declared empty and
/// filled in, it was cleared first (20 instructions an await).
[[gnu::always_inline]] inline suspension begin_integrated(coroutine_context& c, node_owner* owner,
                                                          const void* self) {
  thread_context& tc = thread_context_in_place();
  if (!c.started) {
    start(c, tc, self);
  } else {
    tc.take_given(self, c.resumer);  // resumed by a transfer after a co_yield
    tc.reclaim(self);
  }
  suspension s{.before = tc.here, .give_back = c.resumer, .at = c.home, .changed = false};
  if (owner == nullptr) return s;
  const bool nested = tc.here.kind == context_kind::window && tc.here.frame == self;
  const position node = owner->attach(nested ? tc.here.at : c.home);
  if (node.empty()) return s;
  s.at = node;
  s.changed = true;
  tc.set({node, self, context_kind::window});
  return s;
}

/// After the hand-off; see the protocol above. `next` is the coroutine a
/// symmetric transfer goes to; `StartsIntegrated`, whether the await is of
/// an integrated task type, whose coroutine that is (starts_integrated).
template <bool StartsIntegrated>
[[gnu::always_inline]] inline void end_suspend(const suspension& s, handoff how,
                                               const void* next) noexcept {
  thread_context& tc = thread_context_in_place();
  if (s.at.empty() && s.give_back.at.empty() && tc.idle()) return;  // outside any task
  switch (how) {
    case handoff::resumes_here:
      if (s.changed) tc.set(s.before);
      return;
    case handoff::transfers:
      // An await nested in this one (a root, an instrumented wrapper) may
      // have started the awaited task's coroutine already, at a place it
      // named more precisely; what it gives back is this coroutine's, the
      // outermost await's, carried above.
      if (tc.here.frame == next && tc.says_task_runs()) {
        tc.carry(s.give_back, next, s.at);
        return;
      }
      if constexpr (!StartsIntegrated) {
        // To a coroutine that may be of any task (a scheduler's next, an
        // event's waiter): held back, for an integrated one to take when it
        // resumes (see thread_context).
        tc.hand_back(s.give_back, next);
        return;
      }
      // The awaited task's coroutine runs from its first instruction at
      // `at`, and takes what this activation gives back.
      tc.transfer({s.at, next, context_kind::running});
      tc.carry(s.give_back, next, s.at);
      return;
    case handoff::suspended:
      tc.set(s.give_back);
      return;
  }
}

/// The wrapped await_suspend threw: the coroutine goes on as if it had never
/// suspended.
[[gnu::noinline]] inline void abort_suspend(const suspension& s) noexcept {
  if (s.changed) thread_context_in_place().set(s.before);
}

/// First thing when an integrated coroutine resumes from an await that
/// suspended: it runs again at its position, and remembers what to give
/// back. Flattened: left to GCC, whether the thread's state update is
/// inlined here depended on how much else the program's translation unit
/// inlines (+30 instructions a resumption when it was not).
///
/// `awaited` is the integrated coroutine the await transferred to, if any.
/// When the thread still says that coroutine runs, it neither ended nor
/// suspended where the library sees it: it came back by a transfer the
/// library does not see (a co_yield), or resumed this one inline from its
/// final awaiter, after which its frame may be gone. What it gives back
/// cannot be read then: this coroutine gives back only what was carried to
/// it and not taken.
[[gnu::noinline, gnu::flatten]] inline void resume_integrated(coroutine_context& c,
                                                              const void* self,
                                                              const void* awaited) noexcept {
  thread_context& tc = thread_context_in_place();
  if (c.home.empty() && tc.idle()) {  // outside any task, with nothing to give back
    c.resumer = {};
    return;
  }
  if (awaited != nullptr && tc.here.frame == awaited && tc.here.kind == context_kind::running &&
      tc.here.held_for == nullptr) [[unlikely]] {
    c.resumer = {};
    tc.take_given(awaited, c.resumer);
  } else {
    tc.take_resumer(self, c.resumer);
  }
  tc.run(c.home, self);
}

/// An integrated coroutine reaches its final suspend point: whatever runs
/// next on this thread, its activation is over. One that ends without having
/// awaited anything (a child that completes at once) only takes what it
/// gives back: its position would serve no await, and end_final replaces
/// the thread's state anyway.
[[gnu::always_inline]] inline context_state begin_final(coroutine_context& c,
                                                        const void* self) noexcept {
  thread_context& tc = thread_context_in_place();
  if (!c.started) {
    c.started = true;
    if (tc.idle()) return {};  // outside any task, with nothing to give back
    tc.take_resumer(self, c.resumer);
  } else {
    tc.take_given(self, c.resumer);  // resumed by a transfer after a co_yield
  }
  return c.resumer;
}

[[gnu::always_inline]] inline void end_final(const context_state& give_back, handoff how,
                                             const void* next) noexcept {
  thread_context& tc = thread_context_in_place();
  if (give_back.at.empty() && tc.idle()) return;  // outside any task
  // To the coroutine that awaited this one, of a type unknown here: handed
  // back (see thread_context).
  if (how == handoff::transfers) {
    tc.hand_back(give_back, next);
  } else {
    tc.set(give_back);
  }
}

/// An integrated coroutine's exception escapes its body to whoever resumed
/// it: its activation is over as at a final suspend point that suspends,
/// which it never reaches. Out of line: it runs in the coroutine body.
[[gnu::noinline]] inline void end_by_exception(coroutine_context& c, const void* self) noexcept {
  end_final(begin_final(c, self), handoff::suspended, nullptr);
}

}  // namespace await_tree::detail
