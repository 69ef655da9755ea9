// SPDX-License-Identifier: Apache-2.0
// The workloads whose cost tests/bench/instructions.sh counts in instructions
// (valgrind callgrind). Each runs one operation `ops` times, plain or
// instrumented; the script runs it for N and 2N operations and reports
// (Ir(2N) - Ir(N)) / N, so start-up and set-up cancel out.
//
//   instructions WORKLOAD plain|instrumented OPS
//   instructions --list
//
// The variants are workloads.hpp's.

#include "workload.hpp"
#include "workloads.hpp"

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <thread>

namespace {

using bench::await_children;
using bench::await_plain_children;
using bench::run_to_end;

template <bool Instrumented>
void await_children_to_end(std::size_t ops, await_tree::registry* registry) {
  run_to_end(await_children<Instrumented>(ops), registry);
}

/// Row 1: an instrumented await of a child that completes at once, in a task.
void child_in_task(bool instrumented, std::size_t ops) {
  await_tree::registry reg;
  if (instrumented) {
    await_children_to_end<true>(ops, &reg);
  } else {
    await_children_to_end<false>(ops, &reg);
  }
}

/// Row 2: the Rust crate's `basic` shape, `ops` joins.
void join_of_yields(bool instrumented, std::size_t ops) {
  await_tree::registry reg;
  rt::executor ex;
  if (instrumented) {
    bench::run_joins<true>(reg, ex, ops);
  } else {
    bench::run_joins<false>(reg, ex, ops);
  }
}

/// Row 3: an instrumented await outside any task, on a thread that never ran
/// a task.
void outside_task_fresh(bool instrumented, std::size_t ops) {
  std::thread([&] {
    if (instrumented) {
      await_children_to_end<true>(ops, nullptr);
    } else {
      await_children_to_end<false>(ops, nullptr);
    }
  }).join();
}

/// Row 4: the same on a thread that earlier ran a registered task whose
/// joins of plain yields may leave context behind (the measurement).
void outside_task_after_tasks(bool instrumented, std::size_t ops) {
  std::thread([&] {
    join_of_yields(true, 8);
    if (instrumented) {
      await_children_to_end<true>(ops, nullptr);
    } else {
      await_children_to_end<false>(ops, nullptr);
    }
  }).join();
}

/// Row 5: a plain await of a child that completes at once, in a task, from a
/// coroutine of the integrated task type (instrumented) or not.
void plain_await_with_mixin(bool instrumented, std::size_t ops) {
  await_tree::registry reg;
  if (instrumented) {
    run_to_end(await_plain_children<true>(ops), &reg);
  } else {
    run_to_end(await_plain_children<false>(ops), &reg);
  }
}

/// Registers a root under `key_of(i)` with a literal span and drops it
/// unused, `ops` times; plain: the same loop without the registration.
template <class KeyOf>
void register_and_drop_keyed(bool instrumented, std::size_t ops, KeyOf key_of) {
  await_tree::registry reg;
  std::size_t registered = 0;
  for (std::size_t i = 0; i < ops; ++i) {
    if (instrumented) {
      const auto root = reg.register_task(key_of(i), "task");
      registered += root.key().is_anonymous() ? 0 : 1;
    } else {
      ++registered;
    }
  }
  if (registered != ops) std::puts("unreachable: keeps the loop");
}

/// Row 6: under an integer key.
void register_and_drop(bool instrumented, std::size_t ops) {
  register_and_drop_keyed(instrumented, ops, [](std::size_t i) { return static_cast<int>(i); });
}

/// Row 7: under a string-literal key.
void register_and_drop_text(bool instrumented, std::size_t ops) {
  register_and_drop_keyed(
      instrumented, ops, [](std::size_t) -> const auto& { return "worker"; });
}

rt::task<> yield_once(rt::executor& ex) { co_await ex.yield(); }

/// Row 8: spawns `ops` tasks that yield once on one executor and runs them,
/// each registered under an integer key or not (the task type is the
/// integrated one either way: the row is the registration's cost). The same
/// is done first with 10,000 tasks, so that runs of up to 10,000 measure the
/// steady state of a server whose tasks come and go: trees and entries come
/// from the pools.
void spawn_registered(bool instrumented, std::size_t ops) {
  await_tree::registry reg;
  rt::executor ex;
  const auto spawn_and_run = [&](std::size_t tasks) {
    for (std::size_t i = 0; i < tasks; ++i) {
      if (instrumented) {
        rt::spawn(ex, reg.register_task(static_cast<int>(i), "task").instrument(yield_once(ex)));
      } else {
        rt::spawn(ex, yield_once(ex));
      }
    }
    ex.run();
  };
  spawn_and_run(10'000);
  spawn_and_run(ops);
}

/// Awaits a child that completes at once, `ops` times, under a span that
/// waits for `lock` or not.
template <bool WaitsFor>
rt::task<> await_children_waiting(std::size_t ops, const await_tree::resource& lock) {
  int sum = 0;
  for (std::size_t i = 0; i < ops; ++i) {
    if constexpr (WaitsFor) {
      sum += co_await await_tree::instrument(bench::ready_child<true>(static_cast<int>(i)),
                                             await_tree::span("child").waits_for(lock));
    } else {
      sum +=
          co_await await_tree::instrument(bench::ready_child<true>(static_cast<int>(i)), "child");
    }
  }
  if (sum == -1) std::puts("unreachable: keeps the loop");
}

/// Row 9: the deadlock finder's edge. "plain" is row 1's instrumented await,
/// "instrumented" the same await whose span waits_for a resource.
void waits_for_resource(bool with_edge, std::size_t ops) {
  await_tree::registry reg;
  const await_tree::resource lock("lock");
  if (with_edge) {
    run_to_end(await_children_waiting<true>(ops, lock), &reg);
  } else {
    run_to_end(await_children_waiting<false>(ops, lock), &reg);
  }
}

constexpr bench::workload workloads[] = {
    {"child_in_task", &child_in_task},
    {"join_of_yields", &join_of_yields},
    {"outside_task_fresh", &outside_task_fresh},
    {"outside_task_after_tasks", &outside_task_after_tasks},
    {"plain_await_with_mixin", &plain_await_with_mixin},
    {"register_and_drop", &register_and_drop},
    {"register_and_drop_text", &register_and_drop_text},
    {"spawn_registered", &spawn_registered},
    {"waits_for_resource", &waits_for_resource},
};

}  // namespace

int main(int argc, char** argv) { return bench::run_workload(argc, argv, workloads); }
