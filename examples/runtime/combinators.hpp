// SPDX-License-Identifier: Apache-2.0
#pragma once

// when_all and when_any written the way users write them: each starts its
// children one after another from its own await_suspend, each child inside a
// small branch coroutine that reports back when the child finishes. Children
// may finish on different threads at once.

#include "task.hpp"

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <utility>
#include <vector>

namespace rt {
namespace detail {

/// Runs one child; when it finishes, tells its combinator, which may hand
/// back the coroutine to continue with (the parent, when this was the last or
/// the first child, depending on the combinator).
template <class Join, class PromiseBase>
struct branch {
  // Integrated like the task type (PromiseBase): a branch is the task's own
  // code.
  struct promise_type : PromiseBase {
    Join* join = nullptr;
    std::size_t index = 0;

    branch get_return_object() noexcept {
      return branch{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    struct final_awaiter {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        return h.promise().join->on_branch_done(h.promise().index);
      }
      void await_resume() noexcept {}
    };
    auto final_suspend() noexcept { return await_tree::on_final_suspend(final_awaiter{}); }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { join->on_branch_error(index, std::current_exception()); }
  };
  std::coroutine_handle<promise_type> handle;
};

/// `Awaitable` is a reference for an lvalue argument: the branch then awaits
/// the caller's object, as `co_await x` would.
template <class Join, class Awaitable>
branch<Join, typename Join::promise_base> run_branch(Awaitable awaitable) {
  co_await std::forward<Awaitable>(awaitable);
}

/// Owns the branch frames; destroying it cancels whichever are pending.
/// Movable until started, so a combinator can be passed around like any
/// awaitable (and wrapped by await_tree::instrument).
template <class Join>
class branch_set {
  using branch_type = branch<Join, typename Join::promise_base>;

 public:
  branch_set() = default;
  branch_set(branch_set&& other) noexcept
      : handles_(std::move(other.handles_)), errors_(std::move(other.errors_)) {
    other.handles_.clear();
  }
  branch_set& operator=(branch_set&&) = delete;
  ~branch_set() {
    for (auto h : handles_) h.destroy();
  }
  void add(branch_type b) {
    handles_.push_back(b.handle);
    errors_.emplace_back();
  }
  [[nodiscard]] std::size_t size() const noexcept { return handles_.size(); }
  /// Runs branch `i` until it first suspends; it reports to `join`.
  void start(std::size_t i, Join* join) {
    handles_[i].promise().join = join;
    handles_[i].promise().index = i;
    handles_[i].resume();
  }

  /// Branch `i`'s exception; only that branch writes its slot.
  void set_error(std::size_t i, std::exception_ptr e) noexcept { errors_[i] = std::move(e); }
  [[nodiscard]] const std::exception_ptr& error(std::size_t i) const noexcept { return errors_[i]; }

 private:
  std::vector<std::coroutine_handle<typename branch_type::promise_type>> handles_;
  std::vector<std::exception_ptr> errors_;
};

template <class PromiseBase>
class all_join {
 public:
  using promise_base = PromiseBase;

  template <class... Awaitables>
  explicit all_join(Awaitables&&... awaitables) {
    (branches_.add(run_branch<all_join, Awaitables>(std::forward<Awaitables>(awaitables))), ...);
  }

  all_join(all_join&& other) noexcept : branches_(std::move(other.branches_)) {}

  bool await_ready() const noexcept { return branches_.size() == 0; }
  bool await_suspend(std::coroutine_handle<> parent) {
    parent_ = parent;
    remaining_ = branches_.size() + 1;  // +1: this call's own share
    for (std::size_t i = 0; i < branches_.size(); ++i) branches_.start(i, this);
    return remaining_.fetch_sub(1) != 1;  // every child finished already: do not suspend
  }
  void await_resume() {
    for (std::size_t i = 0; i < branches_.size(); ++i) {
      if (branches_.error(i)) std::rethrow_exception(branches_.error(i));
    }
  }

  std::coroutine_handle<> on_branch_done(std::size_t) noexcept {
    return remaining_.fetch_sub(1) == 1 ? parent_ : std::noop_coroutine();
  }
  void on_branch_error(std::size_t i, std::exception_ptr e) noexcept {
    branches_.set_error(i, std::move(e));
  }

 private:
  branch_set<all_join> branches_;
  std::coroutine_handle<> parent_;
  std::atomic<std::size_t> remaining_{0};
};

template <class PromiseBase>
class any_join {
 public:
  using promise_base = PromiseBase;

  template <class... Awaitables>
  explicit any_join(Awaitables&&... awaitables) {
    (branches_.add(run_branch<any_join, Awaitables>(std::forward<Awaitables>(awaitables))), ...);
  }

  any_join(any_join&& other) noexcept : branches_(std::move(other.branches_)) {}

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> parent) {
    parent_ = parent;
    // Stop starting children once one has won, as a select polls in order.
    for (std::size_t i = 0; i < branches_.size() && winner_ == none; ++i) branches_.start(i, this);
    // The winner and this call race to hand over: whoever comes second resumes.
    return !handed_over_.exchange(true);
  }
  /// The index of the child that finished first. The others are cancelled
  /// (their frames destroyed) when this awaitable is.
  std::size_t await_resume() {
    if (branches_.error(winner_)) std::rethrow_exception(branches_.error(winner_));
    return winner_;
  }

  std::coroutine_handle<> on_branch_done(std::size_t i) noexcept {
    std::size_t expected = none;
    if (!winner_.compare_exchange_strong(expected, i)) return std::noop_coroutine();
    return handed_over_.exchange(true) ? parent_ : std::noop_coroutine();
  }
  /// Only the winner's error is rethrown; a loser's dies with its branch.
  void on_branch_error(std::size_t i, std::exception_ptr e) noexcept {
    branches_.set_error(i, std::move(e));
  }

 private:
  static constexpr std::size_t none = static_cast<std::size_t>(-1);
  branch_set<any_join> branches_;
  std::coroutine_handle<> parent_;
  std::atomic<std::size_t> winner_{none};
  std::atomic<bool> handed_over_{false};
};

}  // namespace detail

/// Awaits every awaitable, started in order; rethrows the first exception.
template <class... Awaitables>
detail::all_join<await_tree::promise_mixin> when_all(Awaitables&&... awaitables) {
  return detail::all_join<await_tree::promise_mixin>(std::forward<Awaitables>(awaitables)...);
}

/// Awaits the first awaitable to finish and returns its index; the others are
/// cancelled when the awaitable returned here is destroyed (at the end of the
/// `co_await` expression).
template <class... Awaitables>
detail::any_join<await_tree::promise_mixin> when_any(Awaitables&&... awaitables) {
  return detail::any_join<await_tree::promise_mixin>(std::forward<Awaitables>(awaitables)...);
}

/// when_all and when_any of a runtime that knows nothing of await-tree.
template <class... Awaitables>
detail::all_join<no_mixin> plain_when_all(Awaitables&&... awaitables) {
  return detail::all_join<no_mixin>(std::forward<Awaitables>(awaitables)...);
}
template <class... Awaitables>
detail::any_join<no_mixin> plain_when_any(Awaitables&&... awaitables) {
  return detail::any_join<no_mixin>(std::forward<Awaitables>(awaitables)...);
}

}  // namespace rt
