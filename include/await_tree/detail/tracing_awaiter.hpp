// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/detail/awaiter_traits.hpp>
#include <await_tree/detail/scope_exit.hpp>
#include <await_tree/detail/suspension.hpp>

#include <coroutine>
#include <type_traits>
#include <utility>

namespace await_tree {

struct promise_mixin;

namespace detail {

template <class Awaiter>
struct is_final_hook : std::false_type {};

/// Whether a coroutine with this promise keeps the thread's context exact:
/// its promise holds the context and its final suspend point reports the end.
template <class Promise>
concept integrated_promise = std::is_base_of_v<promise_mixin, Promise> &&
    is_final_hook<decltype(std::declval<Promise&>().final_suspend())>::value;

template <class Promise>
coroutine_context& context_of(std::coroutine_handle<Promise> h) noexcept;

/// Whether awaiting an `A` starts a coroutine of an integrated type (a task
/// of an integrated task type): a symmetric transfer made by that await goes
/// to a coroutine that runs in the task from its first instruction.
/// Specialised for awaitables that run another (a task's root).
template <class A>
struct starts_integrated : std::false_type {};

template <class A>
requires integrated_promise<typename A::promise_type>
struct starts_integrated<A> : std::true_type {
};

template <class A>
inline constexpr bool starts_integrated_v = starts_integrated<std::remove_cvref_t<A>>::value;

template <class Inner, bool StartsIntegrated>
class tracing_awaiter;

template <class T>
inline constexpr bool is_tracing_awaiter_v = false;
template <class Inner, bool StartsIntegrated>
inline constexpr bool is_tracing_awaiter_v<tracing_awaiter<Inner, StartsIntegrated>> = true;

/// Calls `inner.await_suspend(h)` between `begin` (already done, its result
/// `s`) and end_suspend, whatever kind of result it returns. When it throws,
/// the coroutine was not suspended: the thread's state is put back.
///
/// Call it only from an await_suspend kept out of line ([[gnu::noinline]]):
/// clang 16 may spill an inlined await_suspend's locals into the coroutine
/// frame, which another thread may own by the time the code after the
/// hand-off runs (LLVM #56301, #65018). Out of line, they stay on the stack.
///
/// `suspended_self` (in the awaiter) is cleared when the coroutine resumes
/// at once: it did not suspend, so its frame is still its own to write.
/// `transferred_to` (in the awaiter too, when not null) is set to the
/// coroutine a transfer goes to. Only for awaits of an integrated task type:
/// the coroutine they transfer to is the task's, which resumes this one at
/// its end, after the transfer, so nothing can have resumed it meanwhile.
template <bool StartsIntegrated, class Inner, class Promise>
[[gnu::always_inline]] inline auto suspend_through(Inner& inner, std::coroutine_handle<Promise> h,
                                                   const suspension& s, const void*& suspended_self,
                                                   const void** transferred_to = nullptr) {
  using result = decltype(inner.await_suspend(h));
  try {
    if constexpr (std::is_void_v<result>) {
      inner.await_suspend(h);
      end_suspend<StartsIntegrated>(s, handoff::suspended, nullptr);
    } else if constexpr (std::is_same_v<result, bool>) {
      const bool suspends = inner.await_suspend(h);
      end_suspend<StartsIntegrated>(s, suspends ? handoff::suspended : handoff::resumes_here,
                                    nullptr);
      if (!suspends) suspended_self = nullptr;
      return suspends;
    } else {
      const std::coroutine_handle<> next = inner.await_suspend(h);
      const handoff how = classify(next, h);
      if (how == handoff::resumes_here) {
        suspended_self = nullptr;
      } else if (transferred_to != nullptr && how == handoff::transfers) {
        *transferred_to = next.address();
      }
      end_suspend<StartsIntegrated>(s, how, next.address());
      return next;
    }
  } catch (...) {
    abort_suspend(s);
    throw;
  }
}

/// Wraps the awaiter of an instrumented await (with an owner) or of a plain
/// await of an integrated coroutine (without), and runs the protocol of
/// suspension.hpp around it. In a coroutine that is not integrated it only
/// forwards: see suspension.hpp.
template <class Inner, bool StartsIntegrated>
class tracing_awaiter {
 public:
  template <class A>
  tracing_awaiter(A&& awaitable, node_owner* owner)
      : inner_(get_awaiter(std::forward<A>(awaitable))), owner_(owner) {}

  tracing_awaiter(const tracing_awaiter&) = delete;
  tracing_awaiter& operator=(const tracing_awaiter&) = delete;

  bool await_ready() { return inner_.await_ready(); }

  template <class Promise>
  [[gnu::noinline]] auto await_suspend(std::coroutine_handle<Promise> h) {
    if constexpr (integrated_promise<Promise>) {
      self_ = h.address();
      context_ = &context_of(h);
      const void** transferred_to = StartsIntegrated ? &awaited_ : nullptr;
      if (begins_outside_any_task(*context_, owner_)) {
        return suspend_through<StartsIntegrated>(inner_, h, outside_any_task, self_,
                                                 transferred_to);
      }
      const suspension s = begin_integrated(*context_, owner_, self_);
      return suspend_through<StartsIntegrated>(inner_, h, s, self_, transferred_to);
    } else {
      return inner_.await_suspend(h);
    }
  }

  // The bookkeeping runs after the wrapped await_resume (or as its exception
  // leaves): with nested wrappers, the innermost node completes first.
  // Always inlined into the coroutine body (it only calls out-of-line
  // steps): left to GCC, whether it was depended on how much else the
  // translation unit inlines (29 instructions an await when it was not).
  [[gnu::always_inline]] decltype(auto) await_resume() {
    if (self_ == nullptr) {                    // no suspension: the thread's state is as before
      if (owner_ != nullptr) owner_->reset();  // a re-awaited node whose work is done
      return inner_.await_resume();
    }
    const scope_exit finish{[this]() noexcept { finish_await(); }};
    return inner_.await_resume();
  }

 private:
  void finish_await() noexcept {
    // A nested wrapper's own finish, which ran first, has resumed it.
    if constexpr (!is_tracing_awaiter_v<std::remove_cvref_t<Inner>>) {
      resume_integrated(*context_, self_, awaited_);
    }
    if (owner_ != nullptr) owner_->reset();
  }

  Inner inner_;  // a reference when the awaitable is its own awaiter
  node_owner* owner_;
  coroutine_context* context_ = nullptr;  // the awaiting integrated coroutine's
  const void* self_ = nullptr;            // the awaiting coroutine, while it is suspended
  const void* awaited_ = nullptr;         // the integrated coroutine a transfer went to
};

template <class A>
tracing_awaiter(A&&, node_owner*) -> tracing_awaiter<awaiter_t<A>, starts_integrated_v<A>>;

}  // namespace detail
}  // namespace await_tree
