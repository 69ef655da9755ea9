// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/detail/tracing_awaiter.hpp>
#include <await_tree/instrumented.hpp>

#include <coroutine>
#include <type_traits>
#include <utility>

namespace await_tree {

/// An awaitable that keeps the task context exact across its suspension but
/// adds no node: for a promise with an `await_transform` of its own.
template <class A>
class [[nodiscard]] tracked {
 public:
  explicit tracked(A&& awaitable) : awaitable_(std::forward<A>(awaitable)) {}

  auto operator co_await() & { return detail::tracing_awaiter(awaitable_, nullptr); }
  auto operator co_await() && {
    return detail::tracing_awaiter(std::forward<A>(awaitable_), nullptr);
  }

 private:
  A awaitable_;
};

template <class A>
tracked<A> track(A&& awaitable) {
  return tracked<A>(std::forward<A>(awaitable));
}

/// Integrates a task type, so that every tree is exact whatever its
/// coroutines await and wherever they are resumed (see context.hpp). Two
/// things in the task's promise:
///
///     struct promise_type : await_tree::promise_mixin {
///       auto final_suspend() noexcept {
///         return await_tree::on_final_suspend(final_awaiter{});
///       }
///       ...
///     };
///
/// The mixin keeps the coroutine's position in its promise and tracks every
/// `co_await` (instrumented ones pass through unchanged); on_final_suspend
/// tells the thread when the coroutine ends, which nothing else can see.
/// Without on_final_suspend the coroutine is not integrated: its
/// instrumented awaits show what can be told for certain, as in any
/// coroutine.
///
/// A promise that has an `await_transform` of its own should return
/// `await_tree::track(std::forward<A>(a))` (or the instrumented object as is)
/// from it; one whose `yield_value` returns an awaiter that suspends (an
/// async generator) should return `await_tree::track(awaiter)` from it, since
/// a co_yield bypasses await_transform. One whose `unhandled_exception()`
/// rethrows should do it with rethrow_unhandled_exception.
struct promise_mixin {
  template <class A>
  decltype(auto) await_transform(A&& awaitable) {
    if constexpr (is_instrumented_v<std::remove_cvref_t<A>>) {
      return std::forward<A>(awaitable);
    } else {
      return track(std::forward<A>(awaitable));
    }
  }

  detail::coroutine_context await_tree_context;  // the coroutine's, see suspension.hpp
};

namespace detail {

template <class Promise>
coroutine_context& context_of(std::coroutine_handle<Promise> h) noexcept {
  return static_cast<promise_mixin&>(h.promise()).await_tree_context;
}

/// The awaiter of an integrated coroutine's final suspend point.
template <class Inner>
class final_awaiter {
 public:
  explicit final_awaiter(Inner inner) noexcept : inner_(std::move(inner)) {}

  // Always goes through await_suspend, which alone has the promise: a ready
  // inner awaiter (suspend_never) is honoured there by resuming at once, which
  // runs the coroutine off its end as readiness would have.
  bool await_ready() noexcept { return false; }

  // For a promise without the mixin it only forwards, so that a task type
  // may use it whatever its promise derives from.
  template <class Promise>
  [[gnu::noinline]] auto await_suspend(std::coroutine_handle<Promise> h) noexcept {
    constexpr bool integrated = std::is_base_of_v<promise_mixin, Promise>;
    // Initialised at once: declared, then assigned, it was cleared first.
    const context_state give_back = [&] {
      if constexpr (integrated) {
        return begin_final(context_of(h), h.address());
      } else {
        return context_state{};
      }
    }();
    const auto end = [&](handoff how, const void* next) {
      if constexpr (integrated) end_final(give_back, how, next);
    };
    const bool ready = inner_.await_ready();
    using result = decltype(inner_.await_suspend(h));
    if constexpr (std::is_void_v<result>) {
      if (!ready) inner_.await_suspend(h);
      end(ready ? handoff::resumes_here : handoff::suspended, nullptr);
      return !ready;
    } else if constexpr (std::is_same_v<result, bool>) {
      const bool suspends = !ready && inner_.await_suspend(h);
      end(suspends ? handoff::suspended : handoff::resumes_here, nullptr);
      return suspends;
    } else {
      const std::coroutine_handle<> next = ready ? h : inner_.await_suspend(h);
      end(classify(next, h), next.address());
      return next;
    }
  }

  void await_resume() noexcept { inner_.await_resume(); }

 private:
  Inner inner_;
};

template <class Inner>
struct is_final_hook<final_awaiter<Inner>> : std::true_type {};

}  // namespace detail

/// Wraps the awaiter a promise's `final_suspend` returns, so that the thread
/// knows when the coroutine ends (see promise_mixin).
template <class Awaiter>
detail::final_awaiter<Awaiter> on_final_suspend(Awaiter awaiter) noexcept {
  return detail::final_awaiter<Awaiter>(std::move(awaiter));
}

/// Rethrows the exception being handled, for a promise whose
/// `unhandled_exception()` lets it escape to whoever resumed the coroutine
/// (as std::generator's does) instead of keeping it for an awaiting one:
///
///     void unhandled_exception() { await_tree::rethrow_unhandled_exception(*this); }
///
/// Such a coroutine never reaches its final suspend point, so this tells the
/// thread that it ended, as on_final_suspend would have. With a bare
/// `throw;` the thread would go on saying that the coroutine runs, and code
/// run next on it would be taken for its task's. Like on_final_suspend, it
/// only rethrows for a promise without the mixin.
template <class Promise>
[[noreturn]] void rethrow_unhandled_exception(Promise& promise) {
  if constexpr (std::is_base_of_v<promise_mixin, Promise>) {
    const auto h = std::coroutine_handle<Promise>::from_promise(promise);
    detail::end_by_exception(detail::context_of(h), h.address());
  }
  throw;
}

}  // namespace await_tree
