// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/asio/detail/activation.hpp>
#include <await_tree/asio/detail/flavour.hpp>
#include <await_tree/asio/task_executor.hpp>
#include <await_tree/registry.hpp>
#include <await_tree/tree_root.hpp>

#include <concepts>
#include <functional>
#include <type_traits>
#include <utility>

namespace await_tree::asio {
namespace detail {

/// What a task runs, as `asio::co_spawn` takes it: an awaitable, or a
/// function object that returns one (and lives until the coroutine
/// completes: the captures of a lambda keep a session alive).
template <class S>
concept awaitable_factory = std::is_invocable_v<S&> && awaitable<std::invoke_result_t<S&>>;
template <class S>
concept spawnable = awaitable<S> || awaitable_factory<S>;

template <class S>
struct spawned_awaitable {
  using type = S;
};
template <class S>
requires(!awaitable<S>) struct spawned_awaitable<S> {
  using type = std::invoke_result_t<S&>;
};
/// The awaitable a spawn of `S` runs.
template <class S>
using spawned_awaitable_t = typename spawned_awaitable<S>::type;

/// The Asio flavour (see flavour.hpp) of a spawn of `S`.
template <class S>
using spawned_flavour = flavour_of<spawned_awaitable_t<S>>;

template <class E, class Net>
concept executor = Net::template is_executor<E>;

template <class C, class Net>
concept execution_context = std::is_convertible_v<C&, typename Net::execution_context&>;

/// Starts what `spawned` runs, which stays where it is (the root's frame).
template <class S>
spawned_awaitable_t<S> start(S& spawned) {
  if constexpr (awaitable<S>) {
    return std::move(spawned);
  } else {
    return std::invoke(spawned);
  }
}

/// The main thread is the spawned coroutine's own awaitable thread: the one
/// whose position is the task's main position. Out of line for the reason
/// given at frame_guard::open.
[[gnu::noinline]] inline void enter_main_thread(task_state& task, const bool& context_switched) {
  const auto lock = task.tree().lock();
  task.set_main_thread(&context_switched);
  if (activation* a = innermost_activation(); a != nullptr && a->task == &task) {
    a->thread = &context_switched;
  }
}

/// The bottom frame of a spawned task. It owns the root, so the task stays
/// registered for exactly as long as its coroutine lives, and what it runs
/// (a function object too) lives as long.
template <class Spawned>
spawned_awaitable_t<Spawned> run_as_root([[maybe_unused]] tree_root root, task_ref task,
                                         Spawned spawned) {
  using context_switched = typename spawned_flavour<Spawned>::context_switched;
  enter_main_thread(*task.get(), co_await context_switched{});
  co_return co_await start(spawned);
}

template <class Executor, spawnable Spawned, class CompletionToken>
auto spawn_with(const Executor& ex, tree_root root, Spawned spawned, CompletionToken&& token) {
  using net = spawned_flavour<Spawned>;
  using traced_executor = basic_task_executor<net, Executor>;
  static_assert(
      std::is_convertible_v<traced_executor, typename spawned_awaitable_t<Spawned>::executor_type>,
      "await_tree::asio::co_spawn runs the task on a task_executor: the awaitable's "
      "executor type must be type-erased (asio::any_io_executor, the default)");
  core::tree_state* t = core::tree_of(root);
  if (t == nullptr) {  // the root has already ended: nothing to trace
    return net::co_spawn(ex, std::move(spawned), std::forward<CompletionToken>(token));
  }
  task_ref task = task_ref::adopt(task_state::create(*t));
  traced_executor traced(ex, task);
  return net::co_spawn(std::move(traced),
                       run_as_root(std::move(root), std::move(task), std::move(spawned)),
                       std::forward<CompletionToken>(token));
}

/// Spawns on the executor under `ex`. A task spawned from inside another runs
/// on the other's inner executor, not nested in its task; the executors of
/// io_contexts are unwrapped from `any_io_executor`, so that a task's
/// executor stays small enough for Asio to copy without allocating.
template <class Net, class Executor, class... Args>
auto spawn_on(const Executor& ex, Args&&... args) {
  return spawn_with(ex, std::forward<Args>(args)...);
}
template <class Net, class Inner, class... Args>
auto spawn_on(const basic_task_executor<Net, Inner>& ex, Args&&... args) {
  return spawn_with(ex.inner(), std::forward<Args>(args)...);
}
template <class Net, class Executor, class... Args>
requires std::same_as<Executor, typename Net::any_io_executor>
auto spawn_on(const Executor& ex, Args&&... args) {
  using io_executor = typename Net::io_executor;
  if (const auto* traced = ex.template target<basic_task_executor<Net, io_executor>>();
      traced != nullptr) {
    return spawn_with(traced->inner(), std::forward<Args>(args)...);
  }
  if (const auto* io = ex.template target<io_executor>(); io != nullptr) {
    return spawn_with(*io, std::forward<Args>(args)...);
  }
  return spawn_with(ex, std::forward<Args>(args)...);
}

template <class Net, executor<Net> Executor>
const Executor& executor_of(const Executor& ex) noexcept {
  return ex;
}
template <class Net, execution_context<Net> Context>
auto executor_of(Context& ctx) noexcept {
  return ctx.get_executor();
}

}  // namespace detail

/// `asio::co_spawn`, with the task registered under `root` for exactly as
/// long as the spawned coroutine lives (the root ends when it completes or is
/// destroyed). `ex` is an executor or an execution context; `spawned` an
/// `asio::awaitable`, or a function object returning one, which lives until
/// the coroutine completes; the completion token behaves as with
/// `asio::co_spawn`. A root that has already ended spawns the task untraced.
/// The awaitable's type says which Asio runs the task, standalone or Boost
/// (`await_tree::boost_asio::co_spawn` is this function).
///
///     await_tree::asio::co_spawn(io, reg.register_anonymous("accept loop"),
///                                accept_loop(), asio::detached);
///     await_tree::asio::co_spawn(ex, reg, id, "reader",
///                                [self = shared_from_this()] { return self->reader(); },
///                                asio::detached);
template <class ExecutorOrContext, detail::spawnable Spawned, class CompletionToken>
auto co_spawn(ExecutorOrContext&& ex, tree_root root, Spawned spawned, CompletionToken&& token) {
  using net = detail::spawned_flavour<Spawned>;
  return detail::spawn_on<net>(detail::executor_of<net>(ex), std::move(root), std::move(spawned),
                               std::forward<CompletionToken>(token));
}

/// Spawns a task registered in `reg` under `key` (replacing any task
/// registered under an equal key), with `root_span` as its root.
template <class ExecutorOrContext, registry_key Key, detail::spawnable Spawned,
          class CompletionToken>
auto co_spawn(ExecutorOrContext&& ex, registry& reg, Key key, span root_span, Spawned spawned,
              CompletionToken&& token) {
  return await_tree::asio::co_spawn(ex, reg.register_task(std::move(key), std::move(root_span)),
                                    std::move(spawned), std::forward<CompletionToken>(token));
}

/// Spawns a task registered in the global registry, which this creates (with
/// the default config) if `init_global_registry()` has not been called.
template <class ExecutorOrContext, registry_key Key, detail::spawnable Spawned,
          class CompletionToken>
auto co_spawn(ExecutorOrContext&& ex, Key key, span root_span, Spawned spawned,
              CompletionToken&& token) {
  init_global_registry();
  return await_tree::asio::co_spawn(ex, *global_registry(), std::move(key), std::move(root_span),
                                    std::move(spawned), std::forward<CompletionToken>(token));
}

}  // namespace await_tree::asio
