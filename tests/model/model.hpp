// SPDX-License-Identifier: Apache-2.0
#pragma once

// The reference model: the tree each task should show, computed from what the
// program does, without anything of the library.
//
// The rules, as the README states them:
// * an instrumented await is a node while it is pending, under the position
//   of the coroutine awaiting it (the node of the instrumented await that
//   coroutine runs under, or its task's root);
// * the node belongs to the instrumented object: it goes when the await
//   completes or the object is destroyed (a cancelled frame destroys it);
// * a node whose parent goes while it lives on is a detached root, and so is
//   a node created under a position that is already gone (work that outlived
//   the node it was started in);
// * awaiting a live node again re-attaches it under the new awaiter;
// * siblings, and detached roots, are listed by start time, then creation
//   (the test's clock stands still, so by creation; re-attaching keeps it);
// * code running in a task marks its own position as current, unless that
//   is the root (tree::current_id() gives the root "when nothing runs", so the
//   root is never marked); nothing is current between two steps;
// * a task's tree is gone once its root has ended.

#include "program.hpp"

#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace model {

/// A tree as names: each node's parent ("" for a detached root), the nodes
/// in display order, and the nodes marked current. The root is named
/// separately.
struct tree_shape {
  std::string root;
  std::map<std::string, std::string> parent_of;
  std::vector<std::string> display_order;
  std::set<std::string> current;

  bool operator==(const tree_shape&) const = default;

  [[nodiscard]] std::string to_string() const {
    std::string out = "root " + root + (current.contains(root) ? "  <== current\n" : "\n");
    for (const std::string& name : display_order) {
      const std::string& parent = parent_of.at(name);
      out += "  " + name + (parent.empty() ? " detached" : " under " + parent);
      out += current.contains(name) ? "  <== current\n" : "\n";
    }
    return out;
  }
};

class reference_model {
 public:
  explicit reference_model(std::size_t tasks) : tasks_(tasks) {}

  void end_task(std::size_t t) { tasks_[t].ended = true; }
  [[nodiscard]] bool ended(std::size_t t) const { return tasks_[t].ended; }

  /// An instrumented await of `name` begins in a coroutine at `position`:
  /// the node is created, or re-attached if it exists.
  void begin(std::size_t t, const std::string& name, const std::string& position) {
    task_state& task = tasks_[t];
    if (task.ended) return;  // a task whose root ended takes no nodes
    const std::string parent = is_live(t, position) ? position : std::string();
    const auto [it, created] = task.nodes.try_emplace(name, parent, task.next_order);
    if (created) {
      ++task.next_order;
    } else {
      it->second.parent = parent;
    }
  }

  /// The node of `name` goes (its await completed or its object died); the
  /// children it leaves behind become detached roots. Nothing if it is gone.
  void remove(std::size_t t, const std::string& name) {
    task_state& task = tasks_[t];
    if (task.nodes.erase(name) == 0) return;
    for (auto& [child, n] : task.nodes) {
      if (n.parent == name) n.parent.clear();
    }
  }

  /// Task `t`'s expected tree, with code running at `running` if given.
  [[nodiscard]] tree_shape expected(std::size_t t,
                                    const std::optional<std::string>& running) const {
    tree_shape shape{root_name(t), {}, {}, {}};
    for (const auto& [name, n] : tasks_[t].nodes) shape.parent_of.emplace(name, n.parent);
    list_subtrees(t, root_name(t), shape.display_order);
    list_subtrees(t, "", shape.display_order);
    if (running && *running != root_name(t) && is_live(t, *running)) {
      shape.current.insert(*running);
    }
    return shape;
  }

 private:
  struct node {
    std::string parent;  // "" for a detached root
    std::size_t order;   // creation
  };
  struct task_state {
    std::map<std::string, node> nodes;
    std::size_t next_order = 0;
    bool ended = false;
  };

  [[nodiscard]] bool is_live(std::size_t t, const std::string& position) const {
    return position == root_name(t) || tasks_[t].nodes.contains(position);
  }

  /// Appends the subtrees of `parent`'s children, depth first, in creation
  /// order; "" lists the detached subtrees.
  void list_subtrees(std::size_t t, const std::string& parent,
                     std::vector<std::string>& out) const {
    std::map<std::size_t, std::string> children;  // by creation order
    for (const auto& [name, n] : tasks_[t].nodes) {
      if (n.parent == parent) children.emplace(n.order, name);
    }
    for (const auto& [order, name] : children) {
      out.push_back(name);
      list_subtrees(t, name, out);
    }
  }

  std::vector<task_state> tasks_;
};

}  // namespace model
