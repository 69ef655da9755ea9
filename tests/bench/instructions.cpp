// SPDX-License-Identifier: Apache-2.0
// The workloads whose cost tests/bench/instructions.sh counts in instructions
// (valgrind callgrind). Each runs one operation `ops` times, plain or
// instrumented; the script runs it for N and 2N operations and reports
// (Ir(2N) - Ir(N)) / N, so start-up and set-up cancel out.
//
//   instructions WORKLOAD plain|instrumented OPS
//   instructions --list
//
// "plain" is the program without await-tree: the examples' task type
// without integration (rt::plain_task) and plain awaits. "instrumented" is
// the integrated task type (rt::task) with the awaits instrumented.

#include <await_tree/await_tree.hpp>

#include "runtime/combinators.hpp"
#include "runtime/executor.hpp"
#include "runtime/task.hpp"
#include "workload.hpp"

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <thread>

using await_tree::instrument;

namespace {

template <bool Instrumented, class T = void>
using task_of = std::conditional_t<Instrumented, rt::task<T>, rt::plain_task<T>>;

template <bool Instrumented>
task_of<Instrumented, int> ready_child(int i) {
  co_return i;
}

/// Awaits a child that completes at once, `ops` times.
template <bool Instrumented>
task_of<Instrumented> await_children(std::size_t ops) {
  int sum = 0;
  for (std::size_t i = 0; i < ops; ++i) {
    if constexpr (Instrumented) {
      sum += co_await instrument(ready_child<true>(static_cast<int>(i)), "child");
    } else {
      sum += co_await ready_child<false>(static_cast<int>(i));
    }
  }
  if (sum == -1) std::puts("unreachable: keeps the loop");
}

/// Runs `body` to completion on this thread, under a registered root when
/// `registry` is given.
template <class Task>
void run_to_end(Task body, await_tree::registry* registry) {
  if (registry == nullptr) {
    body.start();
    return;
  }
  auto drive = [](auto awaitable) -> rt::plain_task<> { co_await std::move(awaitable); };
  rt::plain_task<> root = drive(registry->register_task(0, "bench").instrument(std::move(body)));
  root.start();
}

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

/// Row 2: the Rust crate's `basic` shape, join(fut1: yield; fut2: yield,
/// yield) with the join and both futures instrumented, `ops` joins.
template <bool Instrumented>
task_of<Instrumented> joins_of_yields(rt::executor& ex, std::size_t ops) {
  auto fut1 = [&]() -> task_of<Instrumented> { co_await ex.yield(); };
  auto fut2 = [&]() -> task_of<Instrumented> {
    co_await ex.yield();
    co_await ex.yield();
  };
  for (std::size_t i = 0; i < ops; ++i) {
    if constexpr (Instrumented) {
      co_await instrument(rt::when_all(instrument(fut1(), "fut1"), instrument(fut2(), "fut2")),
                          "join");
    } else {
      co_await rt::plain_when_all(fut1(), fut2());
    }
  }
}

void join_of_yields(bool instrumented, std::size_t ops) {
  await_tree::registry reg;
  rt::executor ex;
  if (instrumented) {
    rt::spawn(ex, reg.register_task(0, "bench").instrument(joins_of_yields<true>(ex, ops)));
  } else {
    rt::spawn(ex, reg.register_task(0, "bench").instrument(joins_of_yields<false>(ex, ops)));
  }
  ex.run();
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

template <bool Integrated>
task_of<Integrated> await_plain_children(std::size_t ops) {
  for (std::size_t i = 0; i < ops; ++i) co_await ready_child<Integrated>(0);
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

constexpr bench::workload workloads[] = {
    {"child_in_task", &child_in_task},
    {"join_of_yields", &join_of_yields},
    {"outside_task_fresh", &outside_task_fresh},
    {"outside_task_after_tasks", &outside_task_after_tasks},
    {"plain_await_with_mixin", &plain_await_with_mixin},
};

}  // namespace

int main(int argc, char** argv) { return bench::run_workload(argc, argv, workloads); }
