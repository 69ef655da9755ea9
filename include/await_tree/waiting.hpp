// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/tree.hpp>

#include <chrono>
#include <cstddef>

namespace await_tree {

/// Where a task has been waiting longest: of the leaves of `t` (the deepest
/// node of each branch, where the task actually waits; detached subtrees
/// included), the oldest whose span is not long-running. nullptr when there
/// is none, as for a task whose root has no child (a root is long-running).
[[nodiscard]] inline const tree::node* longest_waiting_leaf(const tree& t) noexcept {
  const auto& nodes = t.nodes();
  const tree::node* oldest = nullptr;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const tree::node& n = nodes[i];
    const bool is_leaf = i + 1 == nodes.size() || nodes[i + 1].depth <= n.depth;
    if (is_leaf && !n.span.is_long_running() &&
        (oldest == nullptr || n.elapsed > oldest->elapsed)) {
      oldest = &n;
    }
  }
  return oldest;
}

/// How long `t` has been waiting at its longest_waiting_leaf; zero when it
/// has none.
[[nodiscard]] inline std::chrono::nanoseconds longest_wait(const tree& t) noexcept {
  const tree::node* leaf = longest_waiting_leaf(t);
  return leaf != nullptr ? leaf->elapsed : std::chrono::nanoseconds::zero();
}

}  // namespace await_tree
