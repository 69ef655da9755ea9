// SPDX-License-Identifier: Apache-2.0
#pragma once

// Spans named by {fmt}, apart from span.hpp and instrumented.hpp so that
// these need no fmt.

#include <await_tree/instrumented.hpp>
#include <await_tree/span.hpp>

#include <fmt/format.h>

#include <iterator>
#include <string_view>
#include <utility>

namespace await_tree {

/// `format_span("read block {}", id)`: the name formatted once, checked at
/// compile time as fmt::format's is. A name of up to span::inline_capacity
/// bytes is kept inside the span: no allocation.
template <class... Args>
[[nodiscard]] span format_span(fmt::format_string<Args...> format, Args&&... args) {
  fmt::memory_buffer name;  // on the stack up to 500 bytes
  fmt::format_to(std::back_inserter(name), format, std::forward<Args>(args)...);
  return span(std::string_view(name.data(), name.size()));
}

/// `co_await await_tree::instrument(read_block(id), "read block {}", id)`:
/// instrument(awaitable, format_span(format, args...)).
template <class A, class First, class... Rest>
instrumented<A> instrument(A&& awaitable, fmt::format_string<First, Rest...> format, First&& first,
                           Rest&&... rest) {
  return instrument(std::forward<A>(awaitable),
                    format_span(format, std::forward<First>(first), std::forward<Rest>(rest)...));
}

}  // namespace await_tree
