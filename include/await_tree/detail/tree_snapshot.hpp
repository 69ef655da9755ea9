// SPDX-License-Identifier: Apache-2.0
#pragma once

// Snapshots of a live tree (tree_state) as a `tree`, apart from tree_state.hpp
// so that the await path (instrumented.hpp) compiles without the formatting
// code that `tree` brings (format.hpp, fmt).

#include <await_tree/detail/tree_state.hpp>
#include <await_tree/tree.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace await_tree::detail {

/// The tree as it is now; nothing once its task has ended.
/// Its nodes are appended to `storage` when one is given (the trees of one
/// registry snapshot share theirs), else to a storage of its own.
inline std::optional<tree> snapshot_if_open(
    tree_state& t, const std::shared_ptr<tree::node_storage>& storage = nullptr) {
  const auto lock = t.lock();
  if (t.is_closed()) return std::nullopt;
  return storage ? t.snapshot_into(storage) : t.snapshot();
}

// Walks depth-first with an explicit stack: a pathological tree thousands of
// levels deep must not overflow the snapshotting thread's stack. The stack is
// the thread's, kept between snapshots: a registry's snapshot copies
// thousands of trees, and would otherwise allocate one stack per tree.
inline tree tree_state::snapshot() const {
  auto storage = std::make_shared<tree::node_storage>();
  storage->reserve(instrumented_nodes_ + 1);
  return snapshot_into(storage);
}

template <class NodeStorage>
tree tree_state::snapshot_into(const std::shared_ptr<NodeStorage>& storage) const {
  prefetch_labels();
  const std::chrono::nanoseconds now = clock_();
  NodeStorage& nodes = *storage;
  const std::size_t first = nodes.size();
  thread_local std::vector<pending_visit> stack;
  stack.clear();
  const child_lists& children = gather_children();
  stack.push_back({root_node, 0});
  push_children(children, detached_container, 0, stack);
  std::rotate(stack.begin(), stack.begin() + 1, stack.end());  // the main tree first

  const running_set running =
      running_nodes([](spin_mutex& m) { return std::unique_lock<spin_mutex>(m); });
  node_id current = root_node;
  std::chrono::nanoseconds current_start = std::chrono::nanoseconds::min();
  while (!stack.empty()) {
    const pending_visit v = stack.back();
    stack.pop_back();
    const slot& s = slots_[v.id];
    const bool is_current = shows_current(v.id, running);
    if (is_current && s.start >= current_start) {
      current = v.id;
      current_start = s.start;
    }
    nodes.push_back({v.id, label_only(*s.label), now - s.start, v.depth, is_current,
                     parent_id(v.id) == detached_container, describe_wait(*s.label)});
    push_children(children, v.id, v.depth + 1, stack);
  }
  return tree(storage, first, current, threshold_, {this, incarnation_});
}

// The spans live in their awaitables, one coroutine frame each, scattered
// over the heap: asking for all of them at once overlaps their cache misses,
// which otherwise come one after another as the walk reaches each node.
inline void tree_state::prefetch_labels() const noexcept {
  for (const slot& s : slots_) {
    if (s.label != nullptr) __builtin_prefetch(s.label);
  }
}

}  // namespace await_tree::detail
