// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/any_key.hpp>
#include <await_tree/detail/registry_state.hpp>
#include <await_tree/detail/tracing_awaiter.hpp>

#include <optional>
#include <utility>

namespace await_tree {

template <class A>
class rooted;
class tree_root;

namespace detail {
template <class Inner, bool StartsIntegrated>
class root_awaiter;

/// The tree a root owns (null once it has ended), for runtime integrations
/// that run a task's code under a root of their own making.
inline tree_state* tree_of(const tree_root& root) noexcept;
}  // namespace detail

/// Owns one registered task's tree while the task runs. Made by
/// `registry::register_task`; `std::move(root).instrument(task)` gives the
/// awaitable that runs the task under it. The registry entry disappears when
/// the root ends: when that awaitable completes or is destroyed, or when an
/// unused root is destroyed.
class tree_root {
 public:
  tree_root(tree_root&& other) noexcept : entry_(std::exchange(other.entry_, nullptr)) {}
  tree_root& operator=(tree_root&& other) noexcept {
    if (this != &other) {
      end();
      entry_ = std::exchange(other.entry_, nullptr);
    }
    return *this;
  }
  tree_root(const tree_root&) = delete;
  tree_root& operator=(const tree_root&) = delete;
  ~tree_root() { end(); }

  /// Runs `awaitable` as this task's root. Lazy awaitables only: work an eager
  /// coroutine does before it is awaited happens outside the task.
  template <class A>
  [[nodiscard]] rooted<A> instrument(A&& awaitable) && {
    return rooted<A>(std::move(*this), std::forward<A>(awaitable));
  }

  /// The key the task was registered under; `anonymous #0` (a key no task
  /// has) once the root has ended or was moved from.
  [[nodiscard]] const any_key& key() const noexcept {
    static const any_key no_task = any_key::anonymous(0);
    return entry_ != nullptr ? entry_->key : no_task;
  }

  /// This task's tree now; nothing once the root has ended.
  [[nodiscard]] std::optional<tree> snapshot() const {
    return entry_ != nullptr ? detail::snapshot_if_open(*entry_->tree) : std::nullopt;
  }

 private:
  friend class registry;
  template <class Inner, bool StartsIntegrated>
  friend class detail::root_awaiter;
  friend detail::tree_state* detail::tree_of(const tree_root& root) noexcept;

  explicit tree_root(detail::registry_entry& entry) noexcept : entry_(&entry) {}

  void end() noexcept {
    if (entry_ != nullptr) detail::registry_state::end_task(*std::exchange(entry_, nullptr));
  }

  // The root's until end(). One pointer, so that a task's frame, which
  // holds the root, stays small.
  detail::registry_entry* entry_;
};

namespace detail {

inline tree_state* tree_of(const tree_root& root) noexcept {
  return root.entry_ != nullptr ? root.entry_->tree : nullptr;
}

/// Before the hand-off of the await that runs a task. When it starts a
/// coroutine of an integrated type, the task's root is a bracketed region
/// of the task for whatever the await starts: that coroutine takes the root
/// as its position. Any other awaitable's await_suspend runs code of no
/// task: a task of another type started inline runs its body there, and
/// whatever that body wakes inline (another task's waiter, which the
/// library cannot see) would be taken for this task's.
template <bool StartsIntegrated>
[[gnu::always_inline]] inline suspension begin_root(tree_state& t, const void* self) noexcept {
  thread_context& tc = thread_context_in_place();
  const position at = StartsIntegrated ? t.root_position() : position{};
  const suspension s{tc.here, tc.here, at, true};
  tc.set({at, self, StartsIntegrated ? context_kind::window : context_kind::none});
  return s;
}

/// The task has ended, in the coroutine that ran it: what the task's last
/// activation carried to it is what runs here now (the runtime's own code,
/// which may have been started inline by another task).
[[gnu::noinline]] inline void end_root(const void* self) noexcept {
  thread_context_in_place().give_back_for(self);
}

template <class Inner, bool StartsIntegrated>
class root_awaiter {
 public:
  template <class A>
  root_awaiter(A&& awaitable, tree_root& root)
      : inner_(get_awaiter(std::forward<A>(awaitable))), root_(root) {}

  bool await_ready() { return inner_.await_ready(); }

  template <class Promise>
  [[gnu::noinline]] auto await_suspend(std::coroutine_handle<Promise> h) {
    tree_state* t = tree_of(root_);
    if (t == nullptr) return inner_.await_suspend(h);
    const suspension s = begin_root<StartsIntegrated>(*t, h.address());
    self_ = h.address();
    return suspend_through<StartsIntegrated>(inner_, h, s, self_);
  }

  decltype(auto) await_resume() {
    const scope_exit finish{[this]() noexcept {
      root_.end();
      if (self_ != nullptr) end_root(self_);
    }};
    return inner_.await_resume();
  }

 private:
  Inner inner_;
  tree_root& root_;
  const void* self_ = nullptr;  // the coroutine running the task, once it did
};

template <class A>
root_awaiter(A&&, tree_root&) -> root_awaiter<awaiter_t<A>, starts_integrated_v<A>>;

/// Awaiting a task's root starts the task's coroutine.
template <class A>
struct starts_integrated<rooted<A>> : starts_integrated<std::remove_cvref_t<A>> {};

}  // namespace detail

/// A task's top-level awaitable running under its tree_root.
template <class A>
class [[nodiscard]] rooted {
 public:
  rooted(tree_root root, A&& awaitable)
      : root_(std::move(root)), awaitable_(std::forward<A>(awaitable)) {}

  /// A root runs once, so only an rvalue can be awaited.
  auto operator co_await() && { return detail::root_awaiter(std::forward<A>(awaitable_), root_); }

 private:
  tree_root root_;
  A awaitable_;
};

}  // namespace await_tree
