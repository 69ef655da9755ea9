// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/detail/awaiter_traits.hpp>
#include <await_tree/detail/suspension.hpp>

#include <coroutine>
#include <optional>
#include <type_traits>
#include <utility>

namespace await_tree::detail {

/// Runs a function when the scope is left, normally or by an exception.
template <class F>
class scope_exit {
 public:
  explicit scope_exit(F f) noexcept : f_(std::move(f)) {}
  scope_exit(const scope_exit&) = delete;
  scope_exit& operator=(const scope_exit&) = delete;
  ~scope_exit() { f_(); }

 private:
  F f_;
};

inline handoff classify(std::coroutine_handle<> next, std::coroutine_handle<> self) noexcept {
  if (next == self) return handoff::resumes_here;
  if (next == std::noop_coroutine()) return handoff::suspended;
  return handoff::transfers;
}

/// Calls `inner.await_suspend(h)` between begin_suspend (whose result is
/// `saved`) and end_suspend, whatever kind of result it returns. When it
/// throws, the coroutine was not suspended: `abort(saved)` undoes the begin.
///
/// Call it only from an await_suspend kept out of line ([[gnu::noinline]]):
/// clang 16 may spill an inlined await_suspend's locals into the coroutine
/// frame, which another thread may own by the time the code after the
/// hand-off runs (LLVM #56301, #65018). Out of line, they stay on the stack,
/// and the bookkeeping adds nothing to the frame of the coroutine.
template <class Inner, class Promise, class Abort>
auto suspend_through(Inner& inner, std::coroutine_handle<Promise> h,
                     std::optional<suspend_state> saved, Abort abort) {
  using result = decltype(inner.await_suspend(h));
  try {
    if constexpr (std::is_void_v<result>) {
      inner.await_suspend(h);
      if (saved) end_suspend(*saved, handoff::suspended, h.address(), nullptr);
    } else if constexpr (std::is_same_v<result, bool>) {
      const bool suspends = inner.await_suspend(h);
      if (saved) {
        end_suspend(*saved, suspends ? handoff::suspended : handoff::resumes_here, h.address(),
                    nullptr);
      }
      return suspends;
    } else {
      const std::coroutine_handle<> next = inner.await_suspend(h);
      if (saved) end_suspend(*saved, classify(next, h), h.address(), next.address());
      return next;
    }
  } catch (...) {
    if (saved) abort(*saved);
    throw;
  }
}

/// Wraps the awaiter of an instrumented (with an owner) or tracked (without)
/// await, and runs the suspension protocol around it.
template <class Inner>
class tracing_awaiter {
 public:
  template <class A>
  tracing_awaiter(A&& awaitable, node_owner* owner)
      : inner_(get_awaiter(std::forward<A>(awaitable))), owner_(owner) {}

  tracing_awaiter(const tracing_awaiter&) = delete;
  tracing_awaiter& operator=(const tracing_awaiter&) = delete;
  ~tracing_awaiter() { release_point(point_); }  // non-empty only if destroyed while suspended

  bool await_ready() { return inner_.await_ready(); }

  template <class Promise>
  [[gnu::noinline]] auto await_suspend(std::coroutine_handle<Promise> h) {
    // The common case outside any task, kept free of the protocol's cost.
    if (!has_node() && context_stack::local().top() == nullptr) return inner_.await_suspend(h);
    self_ = h.address();
    using result = decltype(inner_.await_suspend(h));
    constexpr bool may_transfer = !std::is_void_v<result> && !std::is_same_v<result, bool>;
    return suspend_through(inner_, h, begin_suspend(owner_, point_, self_, role_, may_transfer),
                           [this](suspend_state saved) {
                             self_ = nullptr;
                             abort_suspend(saved, owner_, point_);
                           });
  }

  // The bookkeeping runs after the wrapped await_resume (or as its exception
  // leaves): with nested wrappers, the innermost node completes first.
  decltype(auto) await_resume() {
    if (self_ == nullptr && !has_node()) return inner_.await_resume();  // nothing to finish
    const scope_exit finish{[this]() noexcept { finish_await(); }};
    return inner_.await_resume();
  }

 private:
  [[nodiscard]] bool has_node() const noexcept {
    return owner_ != nullptr && owner_->tree() != nullptr;
  }

  // Reached only with a node or after a suspension (see await_resume).
  [[gnu::noinline]] void finish_await() noexcept {
    if (self_ == nullptr) {
      owner_->reset();  // a re-awaited node whose work is done
    } else if (has_node()) {
      complete(*owner_, self_, role_);
    } else {
      resume_at(point_, self_, role_);
    }
  }

  Inner inner_;  // a reference when the awaitable is its own awaiter
  node_owner* owner_;
  resume_point point_;
  await_role role_;
  void* self_ = nullptr;  // the awaiting coroutine, once suspended
};

template <class A>
tracing_awaiter(A&&, node_owner*) -> tracing_awaiter<awaiter_t<A>>;

}  // namespace await_tree::detail
