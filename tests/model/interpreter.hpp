// SPDX-License-Identifier: Apache-2.0
#pragma once

// Runs a random program (program.hpp) as real coroutines under the library,
// step by step on the deterministic scheduler, and compares every task's
// snapshot with the reference model after each step and at each probe.
//
// The coroutines are rt::basic_task with the promise mixin, so plain awaits
// keep the context exact. Each coroutine knows its position (the node its
// awaits attach to) and tells the model what the program does: an
// instrumented await begins, completes, or its object dies (a node_guard in
// the same frame, destroyed with it when the frame is cancelled).

#include <await_tree/await_tree.hpp>

#include "model.hpp"
#include "program.hpp"
#include "runtime/combinators.hpp"
#include "runtime/task.hpp"
#include "scheduler.hpp"
#include "snapshotter.hpp"

#include <algorithm>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace model {

/// The first difference found between the library and the model.
struct mismatch {
  std::size_t step = 0;
  std::string where;
  tree_shape expected;
  std::string actual;
};

/// What one run checked.
struct run_counts {
  std::size_t steps = 0;
  std::size_t snapshots = 0;
};

/// A tree snapshot as names, or nothing when it is malformed (depths that do
/// not nest, or a node listed twice).
inline std::optional<tree_shape> shape_of(const await_tree::tree& t) {
  if (!test::well_formed(t)) return std::nullopt;
  tree_shape shape;
  std::vector<std::string> path;  // the names from the root (or detached root) down
  for (const await_tree::tree::node& n : t.nodes()) {
    std::string name(n.span.name());
    if (n.is_current) shape.current.insert(name);
    path.resize(n.depth);
    if (shape.root.empty()) {
      shape.root = name;
    } else if (shape.parent_of.emplace(name, n.depth == 0 ? "" : path.back()).second) {
      shape.display_order.push_back(name);
    } else {
      return std::nullopt;
    }
    path.push_back(std::move(name));
  }
  return shape;
}

/// How the program's coroutines are written: on a task type integrated with
/// await-tree, where every snapshot must equal the model, or on one that is
/// not, where a snapshot may show less but never wrong: each node in its own
/// task, under one of its ancestors in the model (or detached), and marked
/// current only where the model marks it.
enum class integration { promise_mixin, none };

class interpreter {
 public:
  interpreter(const program& p, choice_source& choices,
              integration mode = integration::promise_mixin)
      : program_(p),
        mode_(mode),
        choices_(choices),
        model_(p.tasks.size()),
        registry_(await_tree::config{.clock = &frozen_clock}) {}

  /// Runs the program to its end; the first mismatch, if any.
  std::optional<mismatch> run();

  [[nodiscard]] const run_counts& counts() const noexcept { return counts_; }

  // What the program's coroutines use.
  scheduler& gates() noexcept { return scheduler_; }
  reference_model& expectations() noexcept { return model_; }
  /// Compares task `t`'s tree, taken from inside it, with the model.
  void probe(std::size_t t, const std::string& position);

 private:
  // Durations play no part in the comparison: keep them all zero.
  static std::chrono::nanoseconds frozen_clock() noexcept { return {}; }

  void start_tasks();
  void check_between_steps();
  void compare(std::size_t t, const std::optional<await_tree::tree>& actual,
               const std::optional<std::string>& running, const std::string& where);
  void record(std::string where, tree_shape expected, std::string actual);

  template <class PromiseBase>
  void start_tasks_as();
  [[nodiscard]] bool matches(const tree_shape& expected, const tree_shape& actual) const;

  const program& program_;
  integration mode_;
  choice_source& choices_;
  scheduler scheduler_;
  reference_model model_;
  await_tree::registry registry_;
  run_counts counts_;
  std::size_t step_ = 0;  // 0 while the tasks start
  std::optional<mismatch> first_mismatch_;
};

namespace interpret {

/// Removes a node from the model when its scope ends: the node of an await
/// goes when the await completes, or when the frame holding its object dies.
/// With `only_while`, only if that flag is still set then.
class node_guard {
 public:
  node_guard(reference_model& m, std::size_t t, std::string name,
             const bool* only_while = nullptr) noexcept
      : model_(m), task_(t), name_(std::move(name)), only_while_(only_while) {}
  node_guard(const node_guard&) = delete;
  node_guard& operator=(const node_guard&) = delete;
  ~node_guard() {
    if (only_while_ == nullptr || *only_while_) model_.remove(task_, name_);
  }

 private:
  reference_model& model_;
  std::size_t task_;
  std::string name_;
  const bool* only_while_;
};

/// The first branch of a `held` any: an instrumented object owned by the
/// awaiting coroutine, which may outlive the any and be awaited again.
struct held_state {
  std::string name;
  std::string awaiter_position;  // where its node goes when awaited
  bool awaited = true;           // its node goes when its work ends
};

/// A coroutine that starts at once and frees itself at its end.
template <class PromiseBase>
struct self_owned {
  struct promise_type : PromiseBase {
    self_owned get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    auto final_suspend() noexcept { return await_tree::on_final_suspend(std::suspend_never{}); }
    void return_void() noexcept {}
    [[noreturn]] void unhandled_exception() noexcept { std::terminate(); }
  };
};

/// What the runtime spawns: awaits a task's rooted awaitable, as rt::spawn does.
using root_runner = self_owned<rt::no_mixin>;

/// The program's coroutines, of a task type integrated with await-tree
/// (PromiseBase = await_tree::promise_mixin) or not (rt::no_mixin).
template <class PromiseBase>
struct coroutines {
  using task = rt::basic_task<void, PromiseBase>;
  using all_join = rt::detail::all_join<PromiseBase>;
  using any_join = rt::detail::any_join<PromiseBase>;
  /// Work started inline that may outlive the node (even the task) it was
  /// started in.
  using detached_work = self_owned<PromiseBase>;

  /// A child coroutine under its own node, which lasts as long as its body.
  static task run_child(interpreter& in, const body& b, std::size_t t, std::string name,
                        std::string parent_position) {
    in.expectations().begin(t, name, parent_position);
    const node_guard guard(in.expectations(), t, name);
    co_await run_body(in, b, t, name);
  }

  /// The work of a held branch: its node stays after its body ends when
  /// nobody awaits it any more.
  static task run_held(interpreter& in, const body& b, std::size_t t, held_state& held) {
    in.expectations().begin(t, held.name, held.awaiter_position);
    const node_guard guard(in.expectations(), t, held.name, &held.awaited);
    co_await run_body(in, b, t, held.name);
  }

  static task leaf(interpreter& in, const statement& s, std::size_t t, std::string position) {
    if (!s.instrumented) {
      co_await in.gates().make_gate(t, s.gate);
      co_return;
    }
    in.expectations().begin(t, s.name, position);
    const node_guard guard(in.expectations(), t, s.name);
    co_await await_tree::instrument(in.gates().make_gate(t, s.gate), s.name);
  }

  static task call(interpreter& in, const branch& child, std::size_t t, std::string position) {
    try {
      if (child.instrumented) {
        co_await await_tree::instrument(run_child(in, child.code, t, child.name, position),
                                        child.name);
      } else {
        co_await run_body(in, child.code, t, position);
      }
    } catch (const program_error&) {
      // The child raised: this coroutine goes on.
    }
  }

  static detached_work spawn_work(interpreter& in, const branch& child, std::size_t t,
                                  std::string position) {
    co_await call(in, child, t, std::move(position));
  }

  /// A combinator over branches[i...], appended to the awaitables already made:
  /// each branch is an instrumented child, or a tracked one (a plain await that
  /// the mixin would make exact in a coroutine of ours).
  template <class Join, class... Made>
  static Join join_of(interpreter& in, const std::vector<branch>& branches, std::size_t t,
                      const std::string& position, std::size_t i, Made&&... made) {
    if constexpr (sizeof...(Made) < max_branches) {
      if (i < branches.size()) {
        const branch& b = branches[i];
        if (b.instrumented) {
          return join_of<Join>(
              in, branches, t, position, i + 1, std::forward<Made>(made)...,
              await_tree::instrument(run_child(in, b.code, t, b.name, position), b.name));
        }
        return join_of<Join>(in, branches, t, position, i + 1, std::forward<Made>(made)...,
                             await_tree::track(run_body(in, b.code, t, position)));
      }
    }
    return Join(std::forward<Made>(made)...);
  }

  /// Awaits a combinator, instrumented or plainly; a branch's raise ends here.
  template <class Join>
  static task await_join(interpreter& in, const statement& s, std::size_t t, std::string position,
                         Join join) {
    try {
      if (s.instrumented) {
        in.expectations().begin(t, s.name, position);
        const node_guard guard(in.expectations(), t, s.name);
        co_await await_tree::instrument(std::move(join), s.name);
      } else {
        co_await std::move(join);
      }
    } catch (const program_error&) {
      // A branch raised: this coroutine goes on.
    }
  }

  /// Where a combinator's branches attach: its node, or the awaiting coroutine's.
  static std::string branch_position(const statement& s, const std::string& position) {
    return s.instrumented ? s.name : position;
  }

  static task join_all(interpreter& in, const statement& s, std::size_t t, std::string position) {
    const std::string inner = branch_position(s, position);
    co_await await_join(in, s, t, position, join_of<all_join>(in, s.branches, t, inner, 0));
  }

  static task join_any(interpreter& in, const statement& s, std::size_t t, std::string position) {
    const std::string inner = branch_position(s, position);
    if (!s.held) {
      co_await await_join(in, s, t, position, join_of<any_join>(in, s.branches, t, inner, 0));
      co_return;
    }
    // Declared first: the held work reads it until the object below is gone.
    held_state state{s.branches[0].name, inner};
    auto held = await_tree::instrument(run_held(in, s.branches[0].code, t, state), state.name);
    const node_guard held_guard(in.expectations(), t, state.name);
    co_await await_join(in, s, t, position, join_of<any_join>(in, s.branches, t, inner, 1, held));
    state.awaited = false;  // it won, or lost and lives on unawaited
    if (s.linger) co_await in.gates().make_gate(t, gate_kind::local);
    if (s.reawait) {
      state.awaited = true;
      in.expectations().begin(t, state.name, position);
      try {
        co_await held;
      } catch (const program_error&) {
        // The held work raised, now or while nobody awaited it.
      }
      state.awaited = false;
      in.expectations().remove(t, state.name);
    }
  }

  static task run_body(interpreter& in, const body& b, std::size_t t, std::string position) {
    for (const statement& s : b.statements) {
      switch (s.kind) {
        case op::leaf:
          co_await leaf(in, s, t, position);
          break;
        case op::call:
          co_await call(in, s.branches[0], t, position);
          break;
        case op::all:
          co_await join_all(in, s, t, position);
          break;
        case op::any:
          co_await join_any(in, s, t, position);
          break;
        case op::spawn:
          spawn_work(in, s.branches[0], t, position);
          break;
        case op::probe:
          in.probe(t, position);
          break;
        case op::wake:
          in.gates().wake(s.target);
          break;
        case op::raise:
          throw program_error{};
      }
    }
  }

  /// Runs a task's root to its end, then tells the model; frees itself.
  template <class Rooted>
  static root_runner run_root(interpreter& in, Rooted rooted, std::size_t t) {
    try {
      co_await std::move(rooted);
    } catch (const program_error&) {
      // The task's body raised: its root has ended all the same.
    }
    in.expectations().end_task(t);
  }
};

}  // namespace interpret

inline std::optional<mismatch> interpreter::run() {
  start_tasks();
  check_between_steps();
  for (step_ = 1; scheduler_.step(choices_); ++step_) {
    ++counts_.steps;
    check_between_steps();
  }
  if (!registry_.collect_all().empty()) {
    record("after the last step: tasks left in the registry", {}, "");
  }
  return first_mismatch_;
}

inline void interpreter::start_tasks() {
  if (mode_ == integration::promise_mixin) {
    start_tasks_as<await_tree::promise_mixin>();
  } else {
    start_tasks_as<rt::no_mixin>();
  }
}

template <class PromiseBase>
void interpreter::start_tasks_as() {
  using program_coroutines = interpret::coroutines<PromiseBase>;
  for (std::size_t t = 0; t < program_.tasks.size(); ++t) {
    const std::string root = root_name(t);
    program_coroutines::run_root(
        *this,
        registry_.register_task(t, root).instrument(
            program_coroutines::run_body(*this, program_.tasks[t], t, root)),
        t);
  }
}

inline bool interpreter::matches(const tree_shape& expected, const tree_shape& actual) const {
  if (mode_ == integration::promise_mixin) return actual == expected;
  if (actual.root != expected.root) return false;
  for (const auto& [name, parent] : actual.parent_of) {
    if (!expected.parent_of.contains(name)) return false;
    if (parent.empty()) continue;  // detached: its parent is not known
    // `parent` must be an ancestor of `name` in the model.
    std::string above = expected.parent_of.at(name);
    while (!above.empty() && above != parent && above != expected.root) {
      above = expected.parent_of.at(above);
    }
    if (above != parent) return false;
  }
  return std::includes(expected.current.begin(), expected.current.end(), actual.current.begin(),
                       actual.current.end());
}

inline void interpreter::check_between_steps() {
  // Named rather than a temporary: GCC 12's -Wmaybe-uninitialized misreads a
  // temporary empty optional string here under -fsanitize=thread.
  static const std::optional<std::string> no_code_runs;
  for (std::size_t t = 0; t < program_.tasks.size(); ++t) {
    compare(t, registry_.get(t), no_code_runs, "between steps");
  }
}

inline void interpreter::probe(std::size_t t, const std::string& position) {
  compare(t, await_tree::current_tree(), position, "probe in " + root_name(t) + " at " + position);
}

inline void interpreter::compare(std::size_t t, const std::optional<await_tree::tree>& actual,
                                 const std::optional<std::string>& running,
                                 const std::string& where) {
  ++counts_.snapshots;
  const std::string label = where + " (task " + root_name(t) + ")";
  if (model_.ended(t)) {
    if (actual) record(label + ": the task has ended", {}, actual->to_string());
    return;
  }
  tree_shape expected = model_.expected(t, running);
  if (!actual) {
    // Without integration, code may not know its task (a probe's tree).
    if (mode_ == integration::promise_mixin || !running) {
      record(label, std::move(expected), "<no tree>");
    }
    return;
  }
  std::optional<tree_shape> shape = shape_of(*actual);
  if (!shape || !matches(expected, *shape)) {
    record(label, std::move(expected),
           (shape ? shape->to_string() : std::string("<malformed>\n")) + actual->to_string());
  }
}

inline void interpreter::record(std::string where, tree_shape expected, std::string actual) {
  if (first_mismatch_) return;
  first_mismatch_ = mismatch{step_, std::move(where), std::move(expected), std::move(actual)};
}

}  // namespace model
