// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/detail/tracing_awaiter.hpp>
#include <await_tree/instrumented.hpp>

#include <type_traits>
#include <utility>

namespace await_tree {

/// An awaitable that keeps the task context exact across its suspension but
/// adds no node: for the awaits a coroutine does not want in the tree.
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

/// Derive a task type's promise from this to make the await-tree exact for
/// every `co_await` in its coroutines, instrumented or not: each await is
/// tracked (no node) and instrumented ones pass through unchanged.
///
/// A promise that has an `await_transform` of its own should instead return
/// `await_tree::track(std::forward<A>(a))` (or the instrumented object as is)
/// from it.
struct promise_mixin {
  template <class A>
  decltype(auto) await_transform(A&& awaitable) {
    if constexpr (is_instrumented_v<std::remove_cvref_t<A>>) {
      return std::forward<A>(awaitable);
    } else {
      return track(std::forward<A>(awaitable));
    }
  }
};

}  // namespace await_tree
