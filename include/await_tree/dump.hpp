// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <await_tree/any_key.hpp>
#include <await_tree/detail/natural_order.hpp>
#include <await_tree/format.hpp>
#include <await_tree/format_limits.hpp>
#include <await_tree/grouped.hpp>
#include <await_tree/registry.hpp>
#include <await_tree/tree.hpp>
#include <await_tree/wait_cycles.hpp>
#include <await_tree/waiting.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <iterator>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace await_tree {

enum class dump_format {
  text,
  /// Nested, the Rust crate's shape: two levels of nesting per tree level.
  json,
  /// Nodes in a flat list with their parents' ids: any depth parses with a
  /// nesting limit of 8.
  flat_json,
};

enum class dump_order {
  /// Keys in natural order: "worker 2" before "worker 10".
  by_key,
  /// By longest_wait(), then by key: the likeliest culprits first.
  longest_waiting_first,
};

struct dump_options {
  /// The registry to dump; the global registry when empty.
  std::optional<registry> source{};
  dump_format format = dump_format::text;
  dump_order order = dump_order::by_key;
  /// Each shape of tree once, with its count of tasks (see group_trees);
  /// groups are ordered by size, their keys by `order`.
  bool grouped = false;
  grouping_options grouping{};
  /// At most this many trees (or groups) are printed; a last line (a field
  /// in JSON) counts the rest.
  std::size_t limit = unlimited;
  /// Depth of indentation, name length and nodes per tree (format_limits).
  format_limits limits{};
  /// The dump stops before the first task or node that would start at or
  /// past this many bytes (so it ends at most one line, or one JSON node,
  /// beyond it); a last line (fields in JSON) counts what was left out.
  std::size_t max_bytes = unlimited;
  /// Only the tasks whose key (as text) contains this; every task when empty.
  std::string key_contains{};
};

namespace detail {

inline constexpr std::string_view no_global_registry =
    "no global registry (call await_tree::init_global_registry())";

/// The trees of `trees` that `key_contains` selects, in the order `order` asks for.
inline std::vector<std::pair<any_key, tree>> select_in_order(
    std::vector<std::pair<any_key, tree>> trees, dump_order order, std::string_view key_contains) {
  if (!key_contains.empty()) {
    std::erase_if(trees, [key_contains](const std::pair<any_key, tree>& entry) {
      return entry.first.to_string().find(key_contains) == std::string::npos;
    });
  }
  struct sort_entry {
    std::string key;
    std::chrono::nanoseconds wait;
    std::size_t index;
  };
  std::vector<sort_entry> entries;
  entries.reserve(trees.size());
  for (std::size_t i = 0; i < trees.size(); ++i) {
    entries.push_back({trees[i].first.to_string(), longest_wait(trees[i].second), i});
  }
  std::sort(entries.begin(), entries.end(), [order](const sort_entry& a, const sort_entry& b) {
    if (order == dump_order::longest_waiting_first && a.wait != b.wait) return a.wait > b.wait;
    if (a.key != b.key) return natural_less(a.key, b.key);
    return a.index < b.index;
  });
  std::vector<std::pair<any_key, tree>> ordered;
  ordered.reserve(trees.size());
  for (const sort_entry& e : entries) ordered.push_back(std::move(trees[e.index]));
  return ordered;
}

/// `... cut at max_bytes B: N more nodes and M more tasks not shown`.
inline void append_cut_line(std::string& out, std::size_t max_bytes, std::size_t nodes_left,
                            std::size_t units_left, std::string_view units) {
  fmt::format_to(std::back_inserter(out), "... cut at max_bytes {}: ", max_bytes);
  if (nodes_left > 0) {
    fmt::format_to(std::back_inserter(out), "{} more {} and ", nodes_left,
                   nodes_left == 1 ? "node" : "nodes");
  }
  fmt::format_to(std::back_inserter(out), "{} more {} not shown\n", units_left, units);
}

/// Whether max_bytes, rather than max_nodes, stopped a tree after `shown`
/// of its `total` nodes.
inline bool cut_by_bytes(std::size_t shown, std::size_t total, const format_limits& limits) {
  return shown < std::min(total, limits.max_nodes);
}

/// A text dump is blocks (a tree, a group, the closing line) separated by a
/// blank line, with none after the last.
inline void start_block(std::string& out) {
  if (!out.empty()) out += '\n';
}

inline void append_trees_text(std::string& out, const std::vector<std::pair<any_key, tree>>& trees,
                              std::size_t shown, const dump_options& options) {
  auto it = std::back_inserter(out);
  for (std::size_t i = 0; i < shown; ++i) {
    const std::size_t total = trees[i].second.nodes().size();
    std::size_t nodes = 0;
    if (out.size() < options.max_bytes) {
      start_block(out);
      fmt::format_to(it, "[{}]\n", trees[i].first);
      nodes = append_tree_text(out, trees[i].second, options.limits, options.max_bytes);
    }
    if (cut_by_bytes(nodes, total, options.limits)) {
      const std::size_t tasks_left = trees.size() - i - (nodes > 0 ? 1 : 0);
      start_block(out);
      append_cut_line(out, options.max_bytes, nodes > 0 ? total - nodes : 0, tasks_left, "tasks");
      return;
    }
  }
  if (const std::size_t rest = trees.size() - shown; rest > 0) {
    start_block(out);
    fmt::format_to(it, "... and {} more {} (limit {})\n", rest, rest == 1 ? "task" : "tasks",
                   options.limit);
  }
}

inline void append_trees_json(std::string& out, const std::vector<std::pair<any_key, tree>>& trees,
                              std::size_t shown, const dump_options& options) {
  out += R"("tasks":[)";
  std::size_t written = 0;
  for (; written < shown && out.size() < options.max_bytes; ++written) {
    out += written == 0 ? R"({"key":)" : R"(,{"key":)";
    append_json_string(out, trees[written].first.to_string());
    out += R"(,"tree":)";
    if (options.format == dump_format::flat_json) {
      append_tree_flat_json(out, trees[written].second, options.limits, options.max_bytes);
    } else {
      append_tree_json(out, trees[written].second, options.limits, options.max_bytes);
    }
    out += '}';
  }
  fmt::format_to(std::back_inserter(out), R"(],"omitted_tasks":{}}})", trees.size() - written);
}

/// How many tasks the groups from index `first` on hold.
inline std::size_t tasks_from(const std::vector<tree_group>& groups, std::size_t first) noexcept {
  std::size_t count = 0;
  for (std::size_t i = first; i < groups.size(); ++i) count += groups[i].keys.size();
  return count;
}

inline void append_groups_text(std::string& out, const std::vector<tree_group>& groups,
                               std::size_t shown, const dump_options& options) {
  for (std::size_t i = 0; i < shown; ++i) {
    const std::size_t total = groups[i].nodes.size();
    std::size_t nodes = 0;
    if (out.size() < options.max_bytes) {
      start_block(out);
      nodes = append_group_text(out, groups[i], options.grouping.keys_shown, options.limits,
                                options.max_bytes);
    }
    if (cut_by_bytes(nodes, total, options.limits)) {
      const std::size_t groups_left = groups.size() - i - (nodes > 0 ? 1 : 0);
      start_block(out);
      append_cut_line(out, options.max_bytes, nodes > 0 ? total - nodes : 0, groups_left, "groups");
      return;
    }
  }
  if (const std::size_t rest = groups.size() - shown; rest > 0) {
    const std::size_t tasks = tasks_from(groups, shown);
    start_block(out);
    fmt::format_to(std::back_inserter(out), "... and {} more {} of {} {} (limit {})\n", rest,
                   rest == 1 ? "group" : "groups", tasks, tasks == 1 ? "task" : "tasks",
                   options.limit);
  }
}

inline void append_groups_json(std::string& out, const std::vector<tree_group>& groups,
                               std::size_t shown, const dump_options& options) {
  out += R"("groups":[)";
  std::size_t written = 0;
  for (; written < shown && out.size() < options.max_bytes; ++written) {
    if (written > 0) out += ',';
    append_group_json(out, groups[written], options.grouping.keys_shown,
                      options.format == dump_format::flat_json, options.limits, options.max_bytes);
  }
  fmt::format_to(std::back_inserter(out), R"(],"omitted_groups":{},"omitted_tasks":{}}})",
                 groups.size() - written, tasks_from(groups, written));
}

/// A dump opens with the deadlock finder's report, taken on the same
/// snapshot (every task, whatever `key_contains` selects).
inline std::string dump_registry(const registry& reg, const dump_options& options) {
  auto all = reg.collect_all();
  const wait_report findings = analyze_waits(all, reg.settings().long_running_threshold);
  const auto trees = select_in_order(std::move(all), options.order, options.key_contains);
  const bool json = options.format != dump_format::text;
  std::string out;
  if (json) {
    out += '{';
    append_wait_report_json(out, findings, options.limits, options.max_bytes);
  } else {
    append_wait_report_text(out, findings, options.limits, options.max_bytes);
  }
  if (options.grouped) {
    const auto groups = group_trees(trees, options.grouping);
    const std::size_t shown = std::min(options.limit, groups.size());
    if (json) {
      append_groups_json(out, groups, shown, options);
    } else {
      append_groups_text(out, groups, shown, options);
    }
  } else {
    const std::size_t shown = std::min(options.limit, trees.size());
    if (json) {
      append_trees_json(out, trees, shown, options);
    } else {
      append_trees_text(out, trees, shown, options);
    }
  }
  return out;
}

}  // namespace detail

/// The dump `options` describe: by default every tree of the global registry
/// as text, each headed by its key in brackets, in natural key order.
/// Without a global registry, a line (a JSON `{"error": ...}`) says so.
[[nodiscard]] inline std::string dump_to_string(const dump_options& options = {}) {
  if (options.source) return detail::dump_registry(*options.source, options);
  if (const registry* global = global_registry(); global != nullptr) {
    return detail::dump_registry(*global, options);
  }
  if (options.format != dump_format::text) {
    std::string out = R"({"error":)";
    detail::append_json_string(out, detail::no_global_registry);
    return out + '}';
  }
  return fmt::format("await-tree: {}\n", detail::no_global_registry);
}

/// Every tree of `reg` as text, each headed by its key in brackets.
[[nodiscard]] inline std::string dump_to_string(const registry& reg) {
  return detail::dump_registry(reg, {});
}

/// Writes dump_to_string(options) to `out` and flushes it.
inline void dump(std::FILE* out = stderr, const dump_options& options = {}) {
  const std::string text = dump_to_string(options);
  std::fwrite(text.data(), 1, text.size(), out);
  std::fflush(out);
}

inline void dump(std::ostream& out, const dump_options& options = {}) {
  out << dump_to_string(options) << std::flush;
}

/// Writes every tree of `reg` to `out`.
inline void dump(const registry& reg, std::FILE* out = stderr) {
  dump(out, dump_options{.source = reg});
}

}  // namespace await_tree
