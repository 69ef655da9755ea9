// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/format_limits.hpp>
#include <await_tree/span.hpp>
#include <await_tree/wait_edge.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
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

  tree() = default;
  tree(std::vector<node> nodes, std::uint32_t current_id,
       std::chrono::nanoseconds long_running_threshold, detail::tree_origin origin = {})
      : nodes_(std::move(nodes)),
        current_id_(current_id),
        threshold_(long_running_threshold),
        origin_(origin) {}

  [[nodiscard]] const std::vector<node>& nodes() const noexcept { return nodes_; }

  /// Live nodes: the root, its descendants and every detached node.
  [[nodiscard]] std::size_t active_node_count() const noexcept { return nodes_.size(); }

  /// How many detached subtrees there are (counting their roots only).
  [[nodiscard]] std::size_t detached_node_count() const noexcept {
    return static_cast<std::size_t>(std::count_if(
        nodes_.begin(), nodes_.end(), [](const node& n) { return n.is_detached_root; }));
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
  std::vector<node> nodes_;
  std::uint32_t current_id_ = 0;
  std::chrono::nanoseconds threshold_{};
  detail::tree_origin origin_{};
};

}  // namespace await_tree

// The renderings behind to_string() and to_json().
#include <await_tree/format.hpp>
