// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/asio/detail/activation.hpp>

#include <type_traits>
#include <utility>

namespace await_tree::asio::detail {

// What `Inner` supports, its task_executor forwards (through the
// customisation points of the flavour `Net`, see flavour.hpp).
template <class Property, class Net, class Executor>
concept queryable_on = requires(const Executor& e, const Property& p) {
  Net::query(e, p);
};
template <class Property, class Net, class Executor>
concept requirable_on = requires(const Executor& e, const Property& p) {
  Net::require(e, p);
};
template <class Property, class Net, class Executor>
concept preferable_on = requires(const Executor& e, const Property& p) {
  Net::prefer(e, p);
};

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

/// The executor of a task spawned by `await_tree::asio::co_spawn`: `Inner`
/// (the executor it was spawned on) plus the task, for the Asio flavour `Net`
/// (each flavour's namespace names it `task_executor<Inner>`). Everything is forwarded to
/// `Inner`; functions run as activations of the task, which is how code
/// resumed after any await knows its task. Inside the task,
/// `co_await asio::this_coro::executor` yields this executor (type-erased), so
/// work spawned with it (`&&`, `||`, parallel groups, nested co_spawn) belongs
/// to the task too.
template <class Net, class Inner>
class basic_task_executor {
 public:
  basic_task_executor(Inner inner, task_ref task) noexcept
      : inner_(std::move(inner)), task_(std::move(task)) {}

  [[nodiscard]] const Inner& inner() const noexcept { return inner_; }

  template <queryable_on<Net, Inner> Property>
  decltype(auto) query(const Property& p) const noexcept(noexcept(Net::query(inner_, p))) {
    return Net::query(inner_, p);
  }

  template <requirable_on<Net, Inner> Property>
  auto require(const Property& p) const {
    return rewrap(Net::require(inner_, p));
  }

  template <preferable_on<Net, Inner> Property>
  auto prefer(const Property& p) const {
    return rewrap(Net::prefer(inner_, p));
  }

  template <class F>
  void execute(F&& f) const {
    Net::execute(inner_, in_task<std::decay_t<F>>(std::forward<F>(f), task_));
  }

  friend bool operator==(const basic_task_executor& a, const basic_task_executor& b) noexcept {
    return a.inner_ == b.inner_ && a.task_ == b.task_;
  }

 private:
  template <class Other>
  basic_task_executor<Net, Other> rewrap(Other other) const {
    return basic_task_executor<Net, Other>(std::move(other), task_);
  }

  Inner inner_;
  task_ref task_;
};

}  // namespace await_tree::asio::detail
