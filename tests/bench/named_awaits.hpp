// SPDX-License-Identifier: Apache-2.0
#pragma once

// Awaits whose nodes are named each way the library offers, for the
// benchmarks of bench_await.cpp (allocations) and instructions_names.cpp
// (instructions).

#include <await_tree/await_tree.hpp>

#include "workloads.hpp"

#include <cstddef>

namespace bench {

enum class naming { literal, formatted, call_site, coroutine_span, none };

inline rt::task<int> child_with_span(int i) {
  auto scope = co_await await_tree::coroutine_span();
  co_return i;
}

/// Awaits children that complete at once, `ops` times, adding their results
/// to `sum`: instrumented with a literal name, a short formatted one or the
/// call site's; or plain awaits of a child that opens a whole-coroutine span
/// (coroutine_span), or of one that does not (none).
template <naming Naming>
rt::task<> await_named_children(std::size_t ops, int& sum) {
  for (std::size_t i = 0; i < ops; ++i) {
    const int n = static_cast<int>(i);
    if constexpr (Naming == naming::literal) {
      sum += co_await await_tree::instrument(ready_child<true>(n), "child");
    } else if constexpr (Naming == naming::formatted) {
      sum += co_await await_tree::instrument(ready_child<true>(n), "child {}", n);
    } else if constexpr (Naming == naming::call_site) {
      sum += co_await await_tree::instrument(ready_child<true>(n));
    } else if constexpr (Naming == naming::coroutine_span) {
      sum += co_await child_with_span(n);
    } else {
      sum += co_await ready_child<true>(n);
    }
  }
}

}  // namespace bench
