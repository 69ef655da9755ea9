// SPDX-License-Identifier: Apache-2.0
#pragma once

// The deadlock finder: the wait-for graph of a registry's tasks, built from
// the edges their spans declare (span::waits_for), and the cycles in it.
//
// A task waits for another when one of its pending nodes (in its main tree,
// not where its code runs now) waits for that task's key, or for a resource
// that task holds. A cycle whose every wait is at least the threshold old is a
// suspected deadlock; a younger one is a transient cycle. Waits that no live
// task can end (on a key no task has, on a resource held by a detached node,
// by a task that has ended or by code outside any task) are reported too.

#include <await_tree/any_key.hpp>
#include <await_tree/detail/natural_order.hpp>
#include <await_tree/detail/tree_state.hpp>
#include <await_tree/format.hpp>
#include <await_tree/format_limits.hpp>
#include <await_tree/registry.hpp>
#include <await_tree/tree.hpp>
#include <await_tree/wait_edge.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace await_tree {

/// One wait of a cycle: `task` waits at `node` for `waits_for` (the next
/// task's key, or a resource and the task that holds it).
struct wait_step {
  any_key task;
  tree::node node;
  std::string waits_for;
};

/// Tasks waiting for each other in a ring.
struct wait_cycle {
  /// In cycle order: each waits for the next, the last for the first.
  std::vector<any_key> tasks;
  /// `steps[i]` is the wait of `tasks[i]`.
  std::vector<wait_step> steps;
  /// Every wait has lasted at least the threshold.
  bool suspected_deadlock = false;

  [[nodiscard]] std::chrono::nanoseconds shortest_wait() const noexcept {
    std::chrono::nanoseconds shortest = std::chrono::nanoseconds::max();
    for (const wait_step& s : steps) shortest = std::min(shortest, s.node.elapsed);
    return shortest;
  }
};

/// A wait that no live task can end.
struct dangling_wait {
  any_key task;
  tree::node node;
  std::string waits_for;
  /// Why nobody can end it: "no live task has this key", "held by a detached
  /// node of [k] (\"name\")", "held by a task that has ended", "held outside
  /// any task".
  std::string why;
};

struct wait_report {
  /// Waits at least this old make a cycle a suspected deadlock.
  std::chrono::nanoseconds threshold{};
  /// Suspected deadlocks first, then transient cycles.
  std::vector<wait_cycle> cycles;
  std::vector<dangling_wait> dangling;

  [[nodiscard]] bool empty() const noexcept { return cycles.empty() && dangling.empty(); }
};

namespace detail {

enum class holder_kind { task, detached_node, ended_task, no_task };

/// What holds a resource acquired at `holder` now. Locks the holder's tree
/// (trees are pooled, never freed) and nothing else.
inline holder_kind locate_holder(const position& holder) {
  if (holder.empty()) return holder_kind::no_task;
  tree_state& t = *holder.tree;
  const auto lock = t.lock();
  if (!t.is_open_at(holder)) return holder_kind::ended_task;
  // The await it was acquired under is over and the task runs on: it holds it.
  if (!t.contains(holder.node)) return holder_kind::task;
  node_ref n = holder.node;
  while (n.id != root_node && n.id != detached_container) n = t.parent_of(n);
  return n.id == root_node ? holder_kind::task : holder_kind::detached_node;
}

/// One wait for task `to`, at `node` (whose waits_for says on what).
struct wait_arc {
  std::size_t to;
  const tree::node* node;
};

/// The tasks of a snapshot in natural key order, the waits between them, and
/// the waits that lead nowhere. Points into the snapshot.
class wait_graph {
 public:
  explicit wait_graph(const std::vector<std::pair<any_key, tree>>& snapshot) {
    order_tasks(snapshot);
    by_key_.reserve(tasks_.size());
    by_origin_.reserve(tasks_.size());
    for (std::size_t i = 0; i < tasks_.size(); ++i) {
      by_key_.emplace(tasks_[i]->first, i);
      by_origin_.emplace(tasks_[i]->second.origin(), i);
    }
    arcs_.resize(tasks_.size());
    for (std::size_t i = 0; i < tasks_.size(); ++i) {
      // In key order the trees' nodes lie anywhere in the heap: loading the
      // next ones early overlaps their cache misses.
      if (i + prefetch_distance < tasks_.size()) {
        __builtin_prefetch(tasks_[i + prefetch_distance]->second.nodes().data());
      }
      add_waits_of(i);
    }
  }

  [[nodiscard]] std::size_t size() const noexcept { return tasks_.size(); }
  [[nodiscard]] const any_key& key(std::size_t i) const noexcept { return tasks_[i]->first; }
  [[nodiscard]] const std::vector<wait_arc>& arcs(std::size_t i) const noexcept { return arcs_[i]; }
  [[nodiscard]] std::vector<dangling_wait>& dangling() noexcept { return dangling_; }

 private:
  struct origin_hash {
    std::size_t operator()(const tree_origin& o) const noexcept {
      return std::hash<const tree_state*>{}(o.tree) ^ (std::size_t{o.incarnation} << 1U);
    }
  };
  static constexpr std::size_t prefetch_distance = 4;

  void order_tasks(const std::vector<std::pair<any_key, tree>>& snapshot) {
    std::vector<std::pair<std::string, const std::pair<any_key, tree>*>> named;
    named.reserve(snapshot.size());
    for (const auto& entry : snapshot) named.emplace_back(entry.first.to_string(), &entry);
    std::stable_sort(named.begin(), named.end(),
                     [](const auto& a, const auto& b) { return natural_less(a.first, b.first); });
    tasks_.reserve(named.size());
    for (const auto& [name, entry] : named) tasks_.push_back(entry);
  }

  /// The waits of task `i`'s main tree: a detached subtree's waits are no
  /// longer the task's, and a node where code runs now does not wait.
  void add_waits_of(std::size_t i) {
    for (const tree::node& n : tasks_[i]->second.nodes()) {
      if (n.is_detached_root) break;
      if (n.waits_for && !n.is_current) add_wait(i, n, *n.waits_for);
    }
  }

  void add_wait(std::size_t i, const tree::node& n, const wait_edge& e) {
    if (e.task) {
      if (const auto it = by_key_.find(*e.task); it != by_key_.end()) {
        arcs_[i].push_back({it->second, &n});
      } else {
        dangle(i, n, fmt::format("task [{}]", *e.task), "no live task has this key");
      }
      return;
    }
    if (!e.held) return;  // free: a waiter takes it next
    const auto holder = by_origin_.find({e.holder.tree, e.holder.incarnation});
    switch (locate_holder(e.holder)) {
      case holder_kind::task:
        // A task missing here is another registry's, or newer than the
        // snapshot. Another branch of the waiting task may hold it and move
        // on; only a holder the wait is inside of waits for itself.
        if (holder != by_origin_.end() &&
            (holder->second != i || is_inside(tasks_[i]->second, n, e.holder.node.id))) {
          arcs_[i].push_back({holder->second, &n});
        }
        return;
      case holder_kind::detached_node:
        dangle(i, n, resource_text(e), detached_holder(e.holder, holder));
        return;
      case holder_kind::ended_task:
        dangle(i, n, resource_text(e), "held by a task that has ended");
        return;
      case holder_kind::no_task:
        dangle(i, n, resource_text(e), "held outside any task");
        return;
    }
  }

  static std::string resource_text(const wait_edge& e) {
    return fmt::format("resource \"{}\"", e.resource);
  }

 public:
  /// What an arc's wait is for, as a report says it: made only for the arcs
  /// of the cycles reported.
  [[nodiscard]] std::string describe(const wait_arc& arc) const {
    const wait_edge& e = *arc.node->waits_for;
    if (e.task) return key(arc.to).to_string();
    return fmt::format("{} held by [{}]", resource_text(e), key(arc.to));
  }

 private:
  /// Whether node `n` of `t` is node `id` or lies under it.
  static bool is_inside(const tree& t, const tree::node& n, node_id id) noexcept {
    const auto& nodes = t.nodes();
    std::uint32_t depth = n.depth + 1;
    for (auto i = static_cast<std::size_t>(&n - nodes.data()) + 1; i-- > 0 && depth > 0;) {
      if (nodes[i].depth >= depth) continue;  // not on the path up
      depth = nodes[i].depth;
      if (nodes[i].id == id) return true;
    }
    return false;
  }

  template <class Found>
  std::string detached_holder(const position& holder, Found found) const {
    if (found == by_origin_.end()) return "held by a detached node of a task not listed";
    std::string why = fmt::format("held by a detached node of [{}]", key(found->second));
    for (const tree::node& n : tasks_[found->second]->second.nodes()) {
      if (n.id == holder.node.id) why += fmt::format(" (\"{}\")", n.span.name());
    }
    return why;
  }

  void dangle(std::size_t i, const tree::node& n, std::string what, std::string why) {
    dangling_.push_back({key(i), n, std::move(what), std::move(why)});
  }

  std::vector<const std::pair<any_key, tree>*> tasks_;
  std::unordered_map<any_key, std::size_t> by_key_;
  std::unordered_map<tree_origin, std::size_t, origin_hash> by_origin_;
  std::vector<std::vector<wait_arc>> arcs_;
  std::vector<dangling_wait> dangling_;
};

/// The strongly connected component of each task over the arcs `keep`
/// accepts: Tarjan's algorithm, with an explicit stack (a chain of 10,000
/// waits must not overflow the caller's).
template <class Keep>
std::vector<std::size_t> strong_components(const wait_graph& g, Keep keep) {
  constexpr std::size_t unvisited = static_cast<std::size_t>(-1);
  const std::size_t n = g.size();
  std::vector<std::size_t> index(n, unvisited);
  std::vector<std::size_t> low(n);
  std::vector<std::size_t> component(n, unvisited);
  std::vector<std::size_t> stack;
  std::vector<std::pair<std::size_t, std::size_t>> calls;  // task, next arc
  std::size_t next_index = 0;
  std::size_t next_component = 0;
  const auto visit = [&](std::size_t v) {
    index[v] = low[v] = next_index++;
    stack.push_back(v);
    calls.emplace_back(v, 0);
  };
  for (std::size_t root = 0; root < n; ++root) {
    if (index[root] != unvisited) continue;
    visit(root);
    while (!calls.empty()) {
      const std::size_t v = calls.back().first;
      if (const std::size_t a = calls.back().second++; a < g.arcs(v).size()) {
        const wait_arc& arc = g.arcs(v)[a];
        if (!keep(arc)) continue;
        if (index[arc.to] == unvisited) {
          visit(arc.to);
        } else if (component[arc.to] == unvisited) {  // still on the stack
          low[v] = std::min(low[v], index[arc.to]);
        }
        continue;
      }
      calls.pop_back();
      if (!calls.empty()) low[calls.back().first] = std::min(low[calls.back().first], low[v]);
      if (low[v] != index[v]) continue;
      std::size_t w = unvisited;
      do {
        w = stack.back();
        stack.pop_back();
        component[w] = next_component;
      } while (w != v);
      ++next_component;
    }
  }
  return component;
}

/// Breadth-first search for the shortest cycle through a task, within its
/// component. Stamps instead of clearing, so that searching every component
/// costs the graph's size once.
class cycle_search {
 public:
  explicit cycle_search(const wait_graph& g)
      : graph_(g), seen_(g.size(), 0), via_(g.size()), from_(g.size()) {}

  /// The arcs of the shortest cycle from `start` back to it; empty when none.
  template <class Keep>
  std::vector<const wait_arc*> through(std::size_t start, const std::vector<std::size_t>& component,
                                       Keep keep) {
    ++stamp_;
    queue_.assign(1, start);
    seen_[start] = stamp_;
    for (std::size_t head = 0; head < queue_.size(); ++head) {
      const std::size_t v = queue_[head];
      for (const wait_arc& arc : graph_.arcs(v)) {
        if (!keep(arc) || component[arc.to] != component[start]) continue;
        if (arc.to == start) return path_back(start, v, arc);
        if (seen_[arc.to] == stamp_) continue;
        seen_[arc.to] = stamp_;
        via_[arc.to] = &arc;
        from_[arc.to] = v;
        queue_.push_back(arc.to);
      }
    }
    return {};
  }

 private:
  std::vector<const wait_arc*> path_back(std::size_t start, std::size_t last,
                                         const wait_arc& closing) const {
    std::vector<const wait_arc*> arcs{&closing};
    for (std::size_t v = last; v != start; v = from_[v]) arcs.push_back(via_[v]);
    std::reverse(arcs.begin(), arcs.end());
    return arcs;
  }

  const wait_graph& graph_;
  std::vector<std::uint64_t> seen_;
  std::vector<const wait_arc*> via_;
  std::vector<std::size_t> from_;
  std::vector<std::size_t> queue_;
  std::uint64_t stamp_ = 0;
};

inline wait_cycle make_cycle(const wait_graph& g, std::size_t start,
                             const std::vector<const wait_arc*>& arcs, bool suspected) {
  wait_cycle c;
  c.suspected_deadlock = suspected;
  std::size_t at = start;
  for (const wait_arc* arc : arcs) {
    c.tasks.push_back(g.key(at));
    c.steps.push_back({g.key(at), *arc->node, g.describe(*arc)});
    at = arc->to;
  }
  return c;
}

/// Calls `found(start, arcs)` with one cycle for each component of the arcs
/// `keep` accepts that has one and holds no task `excluded` names: the
/// shortest through its first task.
template <class Keep, class Excluded, class Found>
void for_each_cycle(const wait_graph& g, Keep keep, Excluded excluded, Found found) {
  const std::vector<std::size_t> component = strong_components(g, keep);
  std::vector<bool> done(g.size(), false);  // indexed by component
  for (std::size_t v = 0; v < g.size(); ++v) {
    if (excluded(v)) done[component[v]] = true;
  }
  cycle_search search(g);
  for (std::size_t v = 0; v < g.size(); ++v) {
    if (done[component[v]]) continue;
    done[component[v]] = true;
    const std::vector<const wait_arc*> arcs = search.through(v, component, keep);
    if (!arcs.empty()) found(v, arcs);
  }
}

}  // namespace detail

namespace detail {

/// `  [task] name [elapsed] waits for what`
inline void append_wait_text(std::string& out, const any_key& task, const tree::node& n,
                             std::string_view waits_for, std::chrono::nanoseconds threshold,
                             const format_limits& limits) {
  fmt::format_to(std::back_inserter(out), "  [{}] ", task);
  append_text_name(out, n.span.name(), limits);
  out += is_stuck(n.span, n.elapsed, threshold) ? " [!!! " : " [";
  append_duration(out, n.elapsed);
  out += "] waits for ";
  append_text_escaped(out, waits_for);
  out += '\n';
}

/// A cycle's heading line, its tasks in order, then each step's wait.
inline void append_cycle_text(std::string& out, const wait_cycle& c,
                              std::chrono::nanoseconds threshold, const format_limits& limits) {
  if (c.suspected_deadlock) {
    out += "deadlock suspected (all waiting >= ";
    append_duration(out, threshold);
  } else {
    out += "transient wait cycle (shortest wait ";
    append_duration(out, c.shortest_wait());
  }
  out += "): ";
  for (const any_key& task : c.tasks) fmt::format_to(std::back_inserter(out), "{} -> ", task);
  fmt::format_to(std::back_inserter(out), "{}\n", c.tasks.front());
  for (const wait_step& s : c.steps) {
    append_wait_text(out, s.task, s.node, s.waits_for, threshold, limits);
  }
}

/// The report's section of a text dump, the dump's first block; nothing when
/// there is nothing to report. A finding that would start at or past
/// `max_bytes` is left out, with the rest, and a line counts them.
inline void append_wait_report_text(std::string& out, const wait_report& r,
                                    const format_limits& limits, std::size_t max_bytes) {
  if (r.empty()) return;
  const std::size_t total = r.cycles.size() + r.dangling.size();
  for (std::size_t i = 0; i < total; ++i) {
    if (out.size() >= max_bytes) {
      fmt::format_to(std::back_inserter(out), "... cut at max_bytes {}: {} more {} not shown\n",
                     max_bytes, total - i, total - i == 1 ? "finding" : "findings");
      break;
    }
    if (i < r.cycles.size()) {
      append_cycle_text(out, r.cycles[i], r.threshold, limits);
      continue;
    }
    const dangling_wait& d = r.dangling[i - r.cycles.size()];
    out += "wait nobody can end (";
    append_text_escaped(out, d.why);
    out += "):\n";
    append_wait_text(out, d.task, d.node, d.waits_for, r.threshold, limits);
  }
}

/// `"task":...,"node_id":...,"name":...,"elapsed_ns":...,"waits_for":...`
inline void append_wait_json_fields(std::string& out, const any_key& task, const tree::node& n,
                                    std::string_view waits_for, const format_limits& limits) {
  out += R"("task":)";
  append_json_string(out, task.to_string());
  fmt::format_to(std::back_inserter(out), R"(,"node_id":{},"name":)", n.id);
  append_json_name(out, n.span.name(), limits);
  fmt::format_to(std::back_inserter(out), R"(,"elapsed_ns":{},"waits_for":)", n.elapsed.count());
  append_json_string(out, waits_for);
}

inline void append_cycle_json(std::string& out, const wait_cycle& c, const format_limits& limits) {
  fmt::format_to(std::back_inserter(out), R"({{"suspected_deadlock":{},"tasks":[)",
                 c.suspected_deadlock);
  for (std::size_t i = 0; i < c.tasks.size(); ++i) {
    if (i > 0) out += ',';
    append_json_string(out, c.tasks[i].to_string());
  }
  out += R"(],"steps":[)";
  for (std::size_t i = 0; i < c.steps.size(); ++i) {
    out += i > 0 ? ",{" : "{";
    append_wait_json_fields(out, c.steps[i].task, c.steps[i].node, c.steps[i].waits_for, limits);
    out += '}';
  }
  out += "]}";
}

inline void append_dangling_json(std::string& out, const dangling_wait& d,
                                 const format_limits& limits) {
  out += '{';
  append_wait_json_fields(out, d.task, d.node, d.waits_for, limits);
  out += R"(,"why":)";
  append_json_string(out, d.why);
  out += '}';
}

/// `"wait_findings":{...},` at the head of a JSON dump; nothing when there is
/// nothing to report. Findings that would start at or past `max_bytes` are
/// left out and counted (`omitted_findings`).
inline void append_wait_report_json(std::string& out, const wait_report& r,
                                    const format_limits& limits, std::size_t max_bytes) {
  if (r.empty()) return;
  fmt::format_to(std::back_inserter(out), R"("wait_findings":{{"threshold_ns":{},"cycles":[)",
                 r.threshold.count());
  std::size_t omitted = 0;
  const auto append_each = [&](const auto& findings, auto append_one) {
    bool first = true;
    for (const auto& finding : findings) {
      if (out.size() >= max_bytes) {
        ++omitted;
        continue;
      }
      if (!first) out += ',';
      first = false;
      append_one(out, finding, limits);
    }
  };
  append_each(r.cycles, &append_cycle_json);
  out += R"(],"dangling":[)";
  append_each(r.dangling, &append_dangling_json);
  fmt::format_to(std::back_inserter(out), R"(],"omitted_findings":{}}},)", omitted);
}

}  // namespace detail

/// The wait-for cycles and dangling waits among the tasks of one snapshot
/// (as registry::collect_all gives it). Suspected deadlocks: one cycle for
/// each strongly connected set of tasks over the waits at least `threshold`
/// old (the shortest through its first task in natural key order). Transient
/// cycles: the same over every wait, for each set that holds no suspected
/// deadlock.
[[nodiscard]] inline wait_report analyze_waits(const std::vector<std::pair<any_key, tree>>& tasks,
                                               std::chrono::nanoseconds threshold) {
  detail::wait_graph g(tasks);
  wait_report report{threshold, {}, std::move(g.dangling())};
  const auto old = [threshold](const detail::wait_arc& a) { return a.node->elapsed >= threshold; };
  const auto any = [](const detail::wait_arc&) { return true; };
  std::vector<bool> deadlocked(g.size(), false);
  detail::for_each_cycle(
      g, old, [](std::size_t) { return false; },
      [&](std::size_t start, const std::vector<const detail::wait_arc*>& arcs) {
        for (const detail::wait_arc* arc : arcs) deadlocked[arc->to] = true;
        report.cycles.push_back(detail::make_cycle(g, start, arcs, true));
      });
  detail::for_each_cycle(
      g, any, [&](std::size_t v) { return deadlocked[v]; },
      [&](std::size_t start, const std::vector<const detail::wait_arc*>& arcs) {
        report.cycles.push_back(detail::make_cycle(g, start, arcs, false));
      });
  return report;
}

/// The findings on `reg` now, with its config's long_running_threshold (or
/// `threshold`) telling deadlocks from transient cycles.
[[nodiscard]] inline wait_report analyze_waits(
    const registry& reg, std::optional<std::chrono::nanoseconds> threshold = std::nullopt) {
  return analyze_waits(reg.collect_all(),
                       threshold.value_or(reg.settings().long_running_threshold));
}

/// The wait-for cycles among the tasks of `reg`: suspected deadlocks first.
[[nodiscard]] inline std::vector<wait_cycle> find_wait_cycles(const registry& reg) {
  return analyze_waits(reg).cycles;
}

}  // namespace await_tree
