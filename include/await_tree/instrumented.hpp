// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/call_site.hpp>
#include <await_tree/detail/tracing_awaiter.hpp>
#include <await_tree/span.hpp>

#include <exception>
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
  instrumented(A&& awaitable, span&& label)
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

/// Whether instrument() can keep an `A`: an lvalue by reference, an rvalue
/// by moving it in.
template <class A>
concept keepable_awaitable =
    std::is_lvalue_reference_v<A> || std::is_move_constructible_v<std::remove_cvref_t<A>>;

/// `co_await await_tree::instrument(read_block(id), "read block")`
///
/// Outside any task the wrapper only forwards to the wrapped awaitable.
///
/// The label is taken as an rvalue, so that a span made in the call (a
/// literal, `span("x").waits_for(r)`) is moved into the node once.
template <class A>
instrumented<A> instrument(A&& awaitable, span&& label) {
  static_assert(keepable_awaitable<A>,
                "await_tree::instrument: this awaitable cannot be moved, and a temporary is "
                "kept by moving it into the wrapper. Wrap it as an lvalue instead: "
                "`auto op = make_op(); co_await await_tree::instrument(op, \"op\");` "
                "(the wrapper then refers to it).");
  if constexpr (keepable_awaitable<A>) {
    return instrumented<A>(std::forward<A>(awaitable), std::move(label));
  } else {
    std::terminate();  // the build has failed above; no move to complain about here
  }
}

/// A span kept in a variable is copied: the node has its own.
template <class A>
instrumented<A> instrument(A&& awaitable, const span& label) {
  return instrument(std::forward<A>(awaitable), span(label));
}

/// `co_await await_tree::instrument(read_block(id))`: a node named after the
/// calling function and line, `read_block (storage.cpp:42)` (see call_site).
template <class A>
instrumented<A> instrument(A&& awaitable, call_site site = {}) {
  return instrument(std::forward<A>(awaitable), site.name());
}

template <class T>
inline constexpr bool is_instrumented_v = false;
template <class A>
inline constexpr bool is_instrumented_v<instrumented<A>> = true;

}  // namespace await_tree
