// SPDX-License-Identifier: Apache-2.0
#pragma once

// A lazy coroutine task written the way users write them: it starts when
// awaited, hands control to the awaiting coroutine by symmetric transfer when
// it finishes, and destroying it destroys its frame (which is how a pending
// task is cancelled). await-tree does not depend on it: it is the kind of
// runtime code a user brings.
//
// A task can also be awaited by reference, and awaited again after the
// coroutine awaiting it was cancelled: the second await waits for the same
// run instead of starting it twice (a select whose loser is re-awaited).

#include <await_tree/promise.hpp>

#include <coroutine>
#include <exception>
#include <optional>
#include <utility>

namespace rt {

struct no_mixin {};

template <class T, class PromiseBase>
class basic_task;

namespace detail {

template <class T>
struct result_slot {
  std::optional<T> value;
  template <class U>
  void return_value(U&& v) {
    value.emplace(std::forward<U>(v));
  }
  T take() { return std::move(*value); }
};

template <>
struct result_slot<void> {
  void return_void() noexcept {}
  void take() noexcept {}
};

}  // namespace detail

template <class T = void, class PromiseBase = no_mixin>
class [[nodiscard]] basic_task {
 public:
  struct promise_type : PromiseBase, detail::result_slot<T> {
    std::coroutine_handle<> continuation = std::noop_coroutine();
    std::exception_ptr error;
    bool started = false;

    basic_task get_return_object() noexcept {
      return basic_task(std::coroutine_handle<promise_type>::from_promise(*this));
    }
    std::suspend_always initial_suspend() noexcept { return {}; }

    struct final_awaiter {
      bool await_ready() noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept {
        return h.promise().continuation;
      }
      void await_resume() noexcept {}
    };
    // The one line beside the mixin that integrates a task type with
    // await-tree (a no-op for a promise without the mixin).
    auto final_suspend() noexcept { return await_tree::on_final_suspend(final_awaiter{}); }
    void unhandled_exception() noexcept { error = std::current_exception(); }
  };

  basic_task(basic_task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  basic_task& operator=(basic_task other) noexcept {
    std::swap(handle_, other.handle_);
    return *this;
  }
  ~basic_task() {
    if (handle_) handle_.destroy();
  }

  class awaiter {
   public:
    explicit awaiter(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
    awaiter(const awaiter&) = delete;
    awaiter& operator=(const awaiter&) = delete;
    // Destroyed while waiting: whoever awaited was cancelled, the task runs on.
    ~awaiter() {
      if (waiting_ && !handle_.done()) handle_.promise().continuation = std::noop_coroutine();
    }

    bool await_ready() const noexcept { return handle_.done(); }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> awaiting) noexcept {
      promise_type& p = handle_.promise();
      p.continuation = awaiting;
      waiting_ = true;
      if (p.started) return std::noop_coroutine();  // already running: just wait for it
      p.started = true;
      return handle_;
    }
    T await_resume() {
      waiting_ = false;
      if (handle_.promise().error) std::rethrow_exception(handle_.promise().error);
      return handle_.promise().take();
    }

   private:
    std::coroutine_handle<promise_type> handle_;
    bool waiting_ = false;
  };
  /// Runs the task until it first suspends, without awaiting it: the caller
  /// keeps ownership, and destroying the task cancels it.
  void start() {
    if (!handle_.promise().started) {
      handle_.promise().started = true;
      handle_.resume();
    }
  }

  awaiter operator co_await() && noexcept { return awaiter(handle_); }
  awaiter operator co_await() & noexcept { return awaiter(handle_); }

 private:
  explicit basic_task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  std::coroutine_handle<promise_type> handle_;
};

/// The examples' task type: integrated with await-tree, so every tree is
/// exact whatever its coroutines await.
template <class T = void>
using task = basic_task<T, await_tree::promise_mixin>;

/// The same task type without integration, as a user's own task type that
/// knows nothing of await-tree would be.
template <class T = void>
using plain_task = basic_task<T, no_mixin>;

}  // namespace rt
