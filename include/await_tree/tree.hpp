// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/format_limits.hpp>
#include <await_tree/span.hpp>
#include <await_tree/wait_edge.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace await_tree {

namespace detail {
class tree_state;
/// The incarnation of the live tree a snapshot was taken of: how the
/// deadlock finder knows which task holds a resource.
struct tree_origin {
  const tree_state* tree = nullptr;
  std::uint32_t incarnation = 0;
  friend bool operator==(const tree_origin&, const tree_origin&) = default;
};
}  // namespace detail

/// An immutable snapshot of one task's await-tree, taken at one instant.
///
/// Nodes are kept in display order: the main tree first (depth-first, children
/// by start time), then each detached subtree. Formatting lives in format.hpp.
class tree {
 public:
  struct node {
    std::uint32_t id = 0;
    await_tree::span span;
    std::chrono::nanoseconds elapsed{};
    /// 0 for the root and for the root of each detached subtree.
    std::uint32_t depth = 0;
    bool is_current = false;
    bool is_detached_root = false;
    /// What the node waits for, when its span says (span::waits_for).
    std::optional<wait_edge> waits_for{};
  };

  /// The nodes of one or more trees, one after another: the trees of one
  /// registry snapshot share one (see the private constructor).
  using node_storage = std::vector<node>;

  tree() = default;
  tree(std::vector<node> nodes, std::uint32_t current_id,
       std::chrono::nanoseconds long_running_threshold, detail::tree_origin origin = {})
      : tree(std::make_shared<node_storage>(std::move(nodes)), 0, current_id,
             long_running_threshold, origin) {}

  [[nodiscard]] std::span<const node> nodes() const noexcept {
    if (storage_ == nullptr) return {};
    return {storage_->data() + first_, count_};
  }

  /// Live nodes: the root, its descendants and every detached node.
  [[nodiscard]] std::size_t active_node_count() const noexcept { return count_; }

  /// How many detached subtrees there are (counting their roots only).
  [[nodiscard]] std::size_t detached_node_count() const noexcept {
    const std::span<const node> all = nodes();
    return static_cast<std::size_t>(
        std::count_if(all.begin(), all.end(), [](const node& n) { return n.is_detached_root; }));
  }

  /// The node where execution currently is; the root's id when nothing runs.
  [[nodiscard]] std::uint32_t current_id() const noexcept { return current_id_; }

  /// Pending nodes older than this (unless long-running) are flagged as stuck.
  [[nodiscard]] std::chrono::nanoseconds long_running_threshold() const noexcept {
    return threshold_;
  }

  /// The live tree this snapshot was taken of (nothing for a tree made
  /// otherwise).
  [[nodiscard]] detail::tree_origin origin() const noexcept { return origin_; }

  /// The text format; deep trees and long names are bounded by `limits`.
  [[nodiscard]] std::string to_string(const format_limits& limits = {}) const;
  /// The nested JSON form, the Rust crate's.
  [[nodiscard]] std::string to_json(const format_limits& limits = {}) const;
  /// The flat JSON form: nodes in a list with their parents' ids.
  [[nodiscard]] std::string to_flat_json(const format_limits& limits = {}) const;

 private:
  friend class detail::tree_state;

  /// The nodes of `storage` from `first` to its end when the tree is made
  /// (more may be added after them for other trees).
  ///
  /// A registry's snapshot of many trees puts all their nodes in one
  /// storage: one allocation instead of one per tree, which glibc then keeps
  /// for the next snapshot instead of handing its pages back to the system
  /// and faulting them in again (half of a 10,000-task snapshot's time). The
  /// storage lives as long as any tree of that snapshot.
  tree(std::shared_ptr<const node_storage> storage, std::size_t first, std::uint32_t current_id,
       std::chrono::nanoseconds long_running_threshold, detail::tree_origin origin)
      : storage_(std::move(storage)),
        first_(first),
        count_(storage_->size() - first),
        current_id_(current_id),
        threshold_(long_running_threshold),
        origin_(origin) {}

  std::shared_ptr<const node_storage> storage_;
  std::size_t first_ = 0;
  std::size_t count_ = 0;
  std::uint32_t current_id_ = 0;
  std::chrono::nanoseconds threshold_{};
  detail::tree_origin origin_{};
};

}  // namespace await_tree

// The renderings behind to_string() and to_json().
#include <await_tree/format.hpp>
