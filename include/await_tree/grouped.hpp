// SPDX-License-Identifier: Apache-2.0
#pragma once

// Grouped dumps: with thousands of tasks, most trees share a handful of
// shapes. Each shape is shown once, with how many tasks have it, some of
// their keys, and the spread of each node's elapsed time (as Go groups
// identical goroutine stacks).

#include <await_tree/any_key.hpp>
#include <await_tree/format.hpp>
#include <await_tree/format_limits.hpp>
#include <await_tree/span.hpp>
#include <await_tree/tree.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace await_tree {

/// "read block 1234 of 7" -> "read block # of #": a grouping_options::normalize
/// that ignores numbers, so that tasks differing only in ids share a group.
[[nodiscard]] inline std::string mask_digits(std::string_view name) {
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  std::string out;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (!is_digit(name[i])) {
      out += name[i];
    } else if (i == 0 || !is_digit(name[i - 1])) {
      out += '#';
    }
  }
  return out;
}

struct grouping_options {
  /// Maps a span name to the name that trees are compared by and shown with;
  /// when empty, names are used as they are. See mask_digits.
  std::function<std::string(std::string_view)> normalize{};
  /// How many of a group's keys a dump lists.
  std::size_t keys_shown = 5;
};

/// The tasks whose trees have one shape: the same nodes (names after
/// grouping_options::normalize, span flags, depths, `current` marks and
/// detached roots) in the same order.
struct tree_group {
  struct node {
    await_tree::span span;
    std::uint32_t depth = 0;
    bool is_current = false;
    bool is_detached_root = false;
    /// Over the group's tasks; the median of an even count is the lower of
    /// the two middle values.
    std::chrono::nanoseconds min_elapsed{};
    std::chrono::nanoseconds median_elapsed{};
    std::chrono::nanoseconds max_elapsed{};
  };

  /// In display order, as tree::nodes().
  std::vector<node> nodes;
  /// Every task of the group, in the order the trees were given.
  std::vector<any_key> keys;
  std::chrono::nanoseconds long_running_threshold{};
};

namespace detail {

/// The shape of one tree while it is being grouped.
struct shaped_tree {
  std::vector<std::string> names;  // normalised
  std::string shape;               // equal for two trees exactly when their shapes are
};

inline shaped_tree shape_of(const tree& t, const grouping_options& options) {
  shaped_tree out;
  for (const tree::node& n : t.nodes()) {
    std::string name =
        options.normalize ? options.normalize(n.span.name()) : std::string(n.span.name());
    // Length-prefixed, so that no name can imitate a node boundary.
    fmt::format_to(std::back_inserter(out.shape), "{},{:d}{:d}{:d}{:d},{}:", n.depth,
                   n.span.is_verbose(), n.span.is_long_running(), n.is_current, n.is_detached_root,
                   name.size());
    out.shape += name;
    out.names.push_back(std::move(name));
  }
  return out;
}

inline tree_group new_group(const tree& t, const std::vector<std::string>& names) {
  tree_group g;
  g.long_running_threshold = t.long_running_threshold();
  for (std::size_t i = 0; i < names.size(); ++i) {
    const tree::node& n = t.nodes()[i];
    span label(names[i]);
    if (n.span.is_verbose()) label = std::move(label).verbose();
    if (n.span.is_long_running()) label = std::move(label).long_running();
    g.nodes.push_back({std::move(label), n.depth, n.is_current, n.is_detached_root});
  }
  return g;
}

/// Sets the min/median/max of `node` from its elapsed times in every task.
inline void set_spread(tree_group::node& node, std::vector<std::chrono::nanoseconds>& elapsed) {
  std::sort(elapsed.begin(), elapsed.end());
  node.min_elapsed = elapsed.front();
  node.median_elapsed = elapsed[(elapsed.size() - 1) / 2];
  node.max_elapsed = elapsed.back();
}

}  // namespace detail

/// Groups `trees` by shape, the most common shape first; shapes shared by
/// as many tasks come in the order of their first task in `trees`.
[[nodiscard]] inline std::vector<tree_group> group_trees(
    const std::vector<std::pair<any_key, tree>>& trees, const grouping_options& options = {}) {
  std::vector<tree_group> groups;
  std::vector<std::vector<std::vector<std::chrono::nanoseconds>>> elapsed;  // [group][node][task]
  std::unordered_map<std::string, std::size_t> group_of_shape;
  for (const auto& [key, t] : trees) {
    detail::shaped_tree shaped = detail::shape_of(t, options);
    const auto [it, is_new] = group_of_shape.try_emplace(std::move(shaped.shape), groups.size());
    if (is_new) {
      groups.push_back(detail::new_group(t, shaped.names));
      elapsed.emplace_back(t.nodes().size());
    }
    groups[it->second].keys.push_back(key);
    for (std::size_t i = 0; i < t.nodes().size(); ++i) {
      elapsed[it->second][i].push_back(t.nodes()[i].elapsed);
    }
  }
  for (std::size_t g = 0; g < groups.size(); ++g) {
    for (std::size_t i = 0; i < groups[g].nodes.size(); ++i) {
      detail::set_spread(groups[g].nodes[i], elapsed[g][i]);
    }
  }
  std::stable_sort(groups.begin(), groups.end(), [](const tree_group& a, const tree_group& b) {
    return a.keys.size() > b.keys.size();
  });
  return groups;
}

namespace detail {

/// `[600 tasks: 0, 3, 6, ...]`: the size and the first keys of a group.
inline void append_group_header(std::string& out, const tree_group& g, std::size_t keys_shown) {
  auto it = std::back_inserter(out);
  fmt::format_to(it, "[{} {}", g.keys.size(), g.keys.size() == 1 ? "task" : "tasks");
  const std::size_t shown = std::min(keys_shown, g.keys.size());
  for (std::size_t i = 0; i < shown; ++i)
    fmt::format_to(it, "{}{}", i == 0 ? ": " : ", ", g.keys[i]);
  if (shown > 0 && shown < g.keys.size()) out += ", ...";
  out += "]\n";
}

/// `1.000s` when every task shows the same, else
/// `min 1.000s, median 2.000s, max 3.000s`.
inline void append_spread(std::string& out, const tree_group::node& n) {
  if (n.min_elapsed == n.max_elapsed) {
    append_duration(out, n.min_elapsed);
    return;
  }
  out += "min ";
  append_duration(out, n.min_elapsed);
  out += ", median ";
  append_duration(out, n.median_elapsed);
  out += ", max ";
  append_duration(out, n.max_elapsed);
}

/// A group in the text format: its header, then the shape as a tree's text
/// with spreads for durations (`!!!` when the slowest task is stuck there).
/// Bounded as append_bounded; returns how many nodes it wrote.
inline std::size_t append_group_text(std::string& out, const tree_group& g, std::size_t keys_shown,
                                     const format_limits& limits, std::size_t max_bytes) {
  append_group_header(out, g, keys_shown);
  bool in_detached = false;
  const std::size_t shown =
      append_bounded(out, g.nodes, limits, max_bytes, [&](const tree_group::node& n) {
        if (n.is_detached_root) {
          in_detached = true;
          out += "[Detached]\n";
        }
        append_indented_name(out, n.depth + (in_detached ? 1U : 0U), n.span.name(), limits);
        out += is_stuck(n.span, n.max_elapsed, g.long_running_threshold) ? " [!!! " : " [";
        append_spread(out, n);
        out += ']';
        if (n.is_current) out += "  <== current";
        out += '\n';
      });
  append_omitted_nodes_line(out, g.nodes.size(), shown, limits);
  return shown;
}

inline void append_spread_json(std::string& out, const tree_group::node& n) {
  fmt::format_to(std::back_inserter(out), R"({{"min":{},"median":{},"max":{}}})",
                 n.min_elapsed.count(), n.median_elapsed.count(), n.max_elapsed.count());
}

/// `{"count", "keys": [first keys], ...}`, then the nodes: in the nested
/// form `"tree", "detached"` as in a tree's JSON but with `is_current` and
/// `elapsed_ns` as min/median/max; in the flat form `"nodes",
/// "detached_roots", "omitted_nodes"` with ids numbering the nodes in order.
/// Bounded as append_bounded; returns how many nodes it wrote.
inline std::size_t append_group_json(std::string& out, const tree_group& g, std::size_t keys_shown,
                                     bool flat, const format_limits& limits,
                                     std::size_t max_bytes) {
  fmt::format_to(std::back_inserter(out), R"({{"count":{},"keys":[)", g.keys.size());
  const std::size_t shown_keys = std::min(keys_shown, g.keys.size());
  for (std::size_t i = 0; i < shown_keys; ++i) {
    if (i > 0) out += ',';
    append_json_string(out, g.keys[i].to_string());
  }
  out += "],";
  std::size_t shown = 0;
  if (flat) {
    shown = append_flat_nodes(
        out, g.nodes, limits, max_bytes,
        [](const tree_group::node&, std::size_t index) {
          return static_cast<std::uint32_t>(index);
        },
        [&](std::string& o, const tree_group::node& n) {
          o += R"("span":)";
          append_json_span(o, n.span, limits);
          o += R"(,"elapsed_ns":)";
          append_spread_json(o, n);
        });
  } else {
    shown = append_json_forest(
        out, g.nodes, limits, max_bytes, [&](std::string& o, const tree_group::node& n) {
          o += R"({"span":)";
          append_json_span(o, n.span, limits);
          fmt::format_to(std::back_inserter(o), R"(,"is_current":{},)", n.is_current);
          o += R"("elapsed_ns":)";
          append_spread_json(o, n);
          o += R"(,"children":[)";
        });
    if (shown < g.nodes.size()) {
      fmt::format_to(std::back_inserter(out), R"(,"omitted_nodes":{})", g.nodes.size() - shown);
    }
  }
  out += '}';
  return shown;
}

}  // namespace detail
}  // namespace await_tree
