// SPDX-License-Identifier: Apache-2.0
#pragma once

// The protocol every await-tree awaiter follows around the awaiter it wraps.
// context.hpp explains the model; this file is its implementation.
//
//   await_suspend: begin_suspend() -> wrapped await_suspend -> end_suspend()
//   await_resume:  complete() (the await had a node) or resume_at() (none)
//
// Anything after the wrapped await_suspend may run while the coroutine is
// already resumed, or destroyed, on another thread: end_suspend() therefore
// takes only values the caller copied out of the frame beforehand, and touches
// only this thread's stack and trees it holds a reference to.

#include <await_tree/context.hpp>

#include <optional>
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
  [[nodiscard]] tree_state* tree() const noexcept { return tree_; }
  [[nodiscard]] node_ref node() const noexcept { return node_; }

  /// Puts the node under `parent` of `t`, creating it or re-attaching it.
  /// Requires `t`'s mutex; the node must not be in another tree.
  node_ref attach(tree_state& t, node_ref parent) {
    if (tree_ == &t && t.contains(node_)) {
      t.reattach(node_, parent);
    } else {
      tree_ = &t;
      node_ = t.add(parent, &label_);
    }
    return node_;
  }

  /// Removes the node under a lock the caller holds; returns whether the
  /// caller must release the tree afterwards (see tree_state::remove).
  [[nodiscard]] bool remove_locked() noexcept {
    tree_state* t = std::exchange(tree_, nullptr);
    return t->remove(node_);
  }

  /// Removes the node, if any; its pending children become detached.
  void reset() noexcept {
    if (tree_ == nullptr) return;
    tree_state* t = tree_;
    bool last = false;
    {
      const auto lock = t->lock();
      last = remove_locked();
    }
    if (last) t->release();
  }

 private:
  span label_;
  tree_state* tree_ = nullptr;
  node_ref node_;
};

/// How the wrapped await_suspend handed control on.
enum class handoff {
  resumes_here,  // returned false or its own handle: no suspension
  transfers,     // returned another coroutine to run now, on this thread
  suspended,     // control goes back to whoever resumed this activation
};

/// This thread's stack as it was when an await_suspend began: plain values,
/// kept on the real stack across the hand-off.
struct suspend_state {
  std::size_t depth;  // including the entry being edited
  node_ref node;      // the entry as it was before the await
  node_ref base;
  bool nested;
  void* running;
  node_ref awaited_at;  // the await's node, counted as suspended when it suspends
};

/// What the awaiting coroutine was to the activation it awaited in: the
/// coroutine the activation runs (`own`), or a nested call. When it resumes in
/// that same activation it goes back to that role; in a later one, it runs it.
struct await_role {
  std::uint64_t epoch = 0;
  bool own = false;
};

/// Where a node-less await resumes: a counted reference, or empty.
struct resume_point {
  tree_state* tree = nullptr;
  node_ref node;
  bool counted_suspended = false;  // see begin_suspend
};

/// Before the hand-off, in coroutine `self`. With `owner`, attaches its node
/// under the current position (unless outside a task, the task ended, or the
/// span is filtered) and makes it current. Returns nothing when this thread
/// runs outside any task; otherwise fills `role`, and `point` for a node-less
/// await. `may_transfer`: the wrapped await_suspend returns a coroutine handle.
inline std::optional<suspend_state> begin_suspend(node_owner* owner, resume_point& point,
                                                  void* self, await_role& role, bool may_transfer) {
  context_stack& stack = context_stack::local();
  context_entry* e = stack.top();
  if (e == nullptr) {
    if (owner != nullptr) owner->reset();  // an abandoned await's node: no task awaits it now
    return std::nullopt;
  }
  suspend_state saved{stack.depth(), e->node, e->base, e->nested, e->running, {}};
  role = {e->epoch, e->running == self || e->running == nullptr};
  if (e->tree != nullptr) {
    if (owner != nullptr && owner->tree() != e->tree) owner->reset();  // awaited again elsewhere
    const auto lock = e->tree->lock();
    if (owner != nullptr && !e->tree->is_closed() && e->tree->records(owner->label())) {
      const node_ref n = owner->attach(*e->tree, e->node);
      e->tree->move_running(e->node, n);
      e->node = n;
      saved.awaited_at = n;
    } else {
      // A node-less await counts as suspended at its position from now until
      // it resumes or dies: it cannot tell later whether it did suspend. Not
      // one that may transfer (to a child coroutine, typically): the code it
      // transfers to is the task's own, running at this position.
      e->tree->acquire();
      if (!may_transfer) e->tree->count_suspended(e->node, +1);
      point = {e->tree, e->node, !may_transfer};
    }
  }
  e->base = e->node;
  e->nested = true;
  return saved;
}

/// Puts the entry back as it was before an await, at `node`, keeping what
/// the entry itself is (a call, or not).
inline void restore(context_entry& e, node_ref node, const suspend_state& saved) noexcept {
  e.node = node;
  e.base = saved.base;
  e.nested = saved.nested;
  e.running = saved.running;
}

/// A symmetric transfer from `self` to `next`: `next` takes over the role of
/// `self`, running the activation (or, when that is unknown, some coroutine
/// reached through an await), or a nested call; the transfer of a nested
/// call's instrumented await starts a call (see context.hpp).
inline void hand_over(context_stack& stack, const suspend_state& saved, void* self,
                      void* next) noexcept {
  if (saved.running == self || saved.running == nullptr) {
    stack.top()->running = next;
  } else if (saved.awaited_at != node_ref{}) {
    stack.start_call(saved.node, saved.awaited_at, next);
  }
}

/// After the hand-off; see the protocol above. `self` is the suspending
/// coroutine, `next` the one a symmetric transfer goes to.
[[gnu::noinline]] inline void end_suspend(suspend_state saved, handoff how, void* self,
                                          void* next) noexcept {
  context_stack& stack = context_stack::local();
  stack.truncate(saved.depth);  // whatever the inline-resumed code left behind
  if (stack.depth() != saved.depth) return;
  context_entry& e = *stack.top();
  if (how != handoff::suspended) {
    e.base = saved.base;
    e.nested = saved.nested;
    if (how == handoff::transfers) hand_over(stack, saved, self, next);
    return;
  }
  // The suspending coroutine gives control back. Either an enclosing
  // await_suspend resumed it inline (the next coroutine it starts begins where
  // this one did), or it was called from code that goes on (restore), or it
  // ran this activation, which is over (pop).
  const bool ends_activation = !saved.nested && saved.running == self;
  const node_ref resume_position = saved.nested ? saved.base : saved.node;
  const node_ref next_position = ends_activation ? node_ref{} : resume_position;
  if (e.tree != nullptr) {
    const auto lock = e.tree->lock();
    e.tree->count_suspended(saved.awaited_at, +1);
    e.tree->move_running(e.node, next_position);
  }
  if (ends_activation) {
    stack.end_activation();  // its node is already uncounted
  } else {
    restore(e, next_position, saved);
  }
}

/// Gives up a node-less await's position without resuming there: the await
/// was destroyed while suspended, or its await_suspend threw.
inline void release_point(resume_point& point) noexcept {
  tree_state* t = std::exchange(point.tree, nullptr);
  if (t == nullptr) return;
  if (point.counted_suspended) {
    const auto lock = t->lock();
    t->count_suspended(point.node, -1);
  }
  t->release();
}

/// The wrapped await_suspend threw: the coroutine goes on as if never
/// suspended, so put everything back.
inline void abort_suspend(suspend_state saved, node_owner* owner, resume_point& point) noexcept {
  context_stack& stack = context_stack::local();
  stack.truncate(saved.depth);
  if (context_entry* e = stack.top(); e != nullptr && stack.depth() == saved.depth) {
    if (e->tree != nullptr) {
      const auto lock = e->tree->lock();
      e->tree->move_running(e->node, saved.node);
    }
    restore(*e, saved.node, saved);
  }
  if (owner != nullptr) owner->reset();
  release_point(point);
}

/// The coroutine the activation of `e` runs, once `self`, which awaited in
/// `role`, resumes there.
inline void* running_after(const context_entry& e, await_role role, void* self) noexcept {
  return role.own || role.epoch != e.epoch ? self : e.running;
}

/// In await_resume of an await that suspended with a node: removes the node
/// and continues at its parent, in a new activation if this thread was not
/// already running the task there. `self` is the resumed coroutine.
inline void complete(node_owner& owner, void* self, await_role role) noexcept {
  tree_state* t = owner.tree();
  const node_ref n = owner.node();
  context_stack& stack = context_stack::local();
  context_entry* e = stack.top();
  const bool continues = e != nullptr && e->tree == t && e->node == n;
  const bool ends_call = continues && e->call == n;  // `self` is again a nested call
  context_entry pushed = context_entry::activation(nullptr, {}, self);
  bool last = false;
  {
    const auto lock = t->lock();
    const node_ref parent = t->parent_of(n);
    last = owner.remove_locked();
    if (ends_call) {
      // The call's count went with `n`; its caller's node counts again once
      // the call's entry goes.
    } else if (continues) {
      e->node = parent;
      e->running = running_after(*e, role, self);
      t->move_running({}, parent);
    } else if (!t->is_closed()) {
      t->acquire();
      t->move_running({}, parent);
      pushed = context_entry::activation(t, parent, self);
    }
  }
  if (ends_call) {
    stack.end_activation();
  } else if (!continues && (pushed.tree != nullptr || e != nullptr)) {
    stack.push(pushed);
  }
  if (last) t->release();
}

/// In await_resume of an await that suspended without a node.
inline void resume_at(resume_point& point, void* self, await_role role) noexcept {
  context_stack& stack = context_stack::local();
  tree_state* t = std::exchange(point.tree, nullptr);
  context_entry* e = stack.top();
  if (t == nullptr) {
    // Not part of a task: hide the resumer's context, if any, from this code.
    if (e != nullptr) stack.push(context_entry::activation(nullptr, {}, self));
    return;
  }
  const bool continues = e != nullptr && e->tree == t && e->node == point.node;
  if (continues) e->running = running_after(*e, role, self);
  context_entry pushed = context_entry::activation(nullptr, {}, self);
  {
    const auto lock = t->lock();
    if (point.counted_suspended) t->count_suspended(point.node, -1);
    if (!continues && !t->is_closed()) {
      t->move_running({}, point.node);
      pushed = context_entry::activation(t, point.node, self);
    }
  }
  if (pushed.tree == nullptr) t->release();
  if (!continues) stack.push(pushed);
}

}  // namespace await_tree::detail
