// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/asio/detail/activation.hpp>

#include <asio/execution.hpp>
#include <asio/prefer.hpp>
#include <asio/query.hpp>
#include <asio/require.hpp>

#include <type_traits>
#include <utility>

namespace await_tree::asio {

namespace detail {

// What `Inner` supports, task_executor<Inner> forwards.
template <class Property, class Executor>
concept queryable_on = ::asio::can_query<const Executor&, Property>::value;
template <class Property, class Executor>
concept requirable_on = ::asio::can_require<const Executor&, Property>::value;
template <class Property, class Executor>
concept preferable_on = ::asio::can_prefer<const Executor&, Property>::value;

/// A function submitted through a task's executor: runs as an activation of
/// the task, wherever and whenever the inner executor runs it.
template <class F>
class in_task {
 public:
  in_task(F f, task_ref task) : f_(std::move(f)), task_(std::move(task)) {}

  void operator()() {
    const activation_scope scope(*task_.get());
    std::move(f_)();
  }

 private:
  F f_;
  task_ref task_;
};

}  // namespace detail

/// The executor of a task spawned by `await_tree::asio::co_spawn`: `Inner`
/// (the executor it was spawned on) plus the task. Everything is forwarded to
/// `Inner`; functions run as activations of the task, which is how code
/// resumed after any await knows its task. Inside the task,
/// `co_await asio::this_coro::executor` yields this executor (type-erased), so
/// work spawned with it (`&&`, `||`, parallel groups, nested co_spawn) belongs
/// to the task too.
template <class Inner>
class task_executor {
 public:
  task_executor(Inner inner, detail::task_ref task) noexcept
      : inner_(std::move(inner)), task_(std::move(task)) {}

  [[nodiscard]] const Inner& inner() const noexcept { return inner_; }

  template <detail::queryable_on<Inner> Property>
  decltype(auto) query(const Property& p) const
      noexcept(::asio::is_nothrow_query<const Inner&, Property>::value) {
    return ::asio::query(inner_, p);
  }

  template <detail::requirable_on<Inner> Property>
  auto require(const Property& p) const {
    return rewrap(::asio::require(inner_, p));
  }

  template <detail::preferable_on<Inner> Property>
  auto prefer(const Property& p) const {
    return rewrap(::asio::prefer(inner_, p));
  }

  template <class F>
  void execute(F&& f) const {
    ::asio::execution::execute(inner_, detail::in_task<std::decay_t<F>>(std::forward<F>(f), task_));
  }

  friend bool operator==(const task_executor& a, const task_executor& b) noexcept {
    return a.inner_ == b.inner_ && a.task_ == b.task_;
  }

 private:
  template <class Other>
  task_executor<Other> rewrap(Other other) const {
    return task_executor<Other>(std::move(other), task_);
  }

  Inner inner_;
  detail::task_ref task_;
};

}  // namespace await_tree::asio
