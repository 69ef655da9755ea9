// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/detail/tracing_awaiter.hpp>
#include <await_tree/span.hpp>

#include <type_traits>
#include <utility>

namespace await_tree {

/// An awaitable that shows up as a node of the task's await-tree while it is
/// awaited. Made by `instrument()`; owns the wrapped awaitable when given an
/// rvalue and refers to it when given an lvalue.
///
/// The node belongs to this object, not to one `co_await` of it: if a
/// coroutine awaiting it is destroyed while this object lives on (awaited by
/// reference from a when_any branch, say), the node stays; when its parent
/// goes it is shown detached; awaiting this object again re-attaches it.
template <class A>
class [[nodiscard]] instrumented {
 public:
  instrumented(A&& awaitable, span label)
      : awaitable_(std::forward<A>(awaitable)), owner_(std::move(label)) {}

  instrumented(instrumented&&) = default;
  instrumented& operator=(instrumented&&) = delete;

  [[nodiscard]] const span& label() const noexcept { return owner_.label(); }

  auto operator co_await() & { return detail::tracing_awaiter(awaitable_, &owner_); }
  auto operator co_await() && {
    return detail::tracing_awaiter(std::forward<A>(awaitable_), &owner_);
  }

 private:
  A awaitable_;  // `T` or `T&`
  detail::node_owner owner_;
};

/// `co_await await_tree::instrument(read_block(id), "read block")`
///
/// Outside any task the wrapper only forwards to the wrapped awaitable.
template <class A>
instrumented<A> instrument(A&& awaitable, span label) {
  return instrumented<A>(std::forward<A>(awaitable), std::move(label));
}

template <class T>
inline constexpr bool is_instrumented_v = false;
template <class A>
inline constexpr bool is_instrumented_v<instrumented<A>> = true;

}  // namespace await_tree
